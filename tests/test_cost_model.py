"""The closed cost model (harness/ops.py): what a trick inside the graph costs, counted by
hand. Each network computes on the image with something today's table would have let pass free:
a norm that does not fold, a stored table, a pooling sum, numbers written into the graph, a
storage shared by two tensors, a mask over a broadcast partner, the batch size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness import ops
from harness.measure import graph as graph_module
from harness.measure.shapes import BatchSizeError

from .conftest import exported, measured

HW = 32 * 32


def test_a_norm_that_does_not_fold_counts_its_statistics_and_a_product_per_element(tmp_path):
    """A batch norm on the image itself folds into nothing: its four stored vectors are weights,
    and scaling each element is a multiply-accumulate."""
    class Unfolded(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.BatchNorm2d(3)
            self.fc = nn.Linear(3 * HW, 10, bias=False)
            with torch.no_grad():
                self.norm.running_var.fill_(4.0)

        def forward(self, x):
            return self.fc(self.norm(x).flatten(1))

    p = measured(Unfolded(), tmp_path)
    assert p["params"] == 4 * 3 + 3 * HW * 10  # weight, bias, running mean and variance; fc
    assert p["macs"] == 3 * HW + 3 * HW * 10  # one per normalised element; fc
    assert p["measured"]["weight_bits"] == 32  # the norm's scale is a float weight


def test_a_lookup_in_a_stored_table_is_a_product_per_answer(tmp_path):
    """The image's grey levels, quantised, index a stored table of 256 x 10 logits: the table counts
    in w, and each looked-up element is a multiply-accumulate."""
    class Lookup(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(256, 10)

        def forward(self, x):
            level = (x[:, 0, 0, 0] * 255).round().clamp(0, 255).long()
            return self.table(level)

    p = measured(Lookup(), tmp_path)
    assert p["params"] == 2560 and p["macs"] == 10


@pytest.mark.parametrize("how", ["index", "index_select", "gather"])
def test_a_lookup_written_as_indexing_counts_the_same(tmp_path, how):
    """`table[idx]` exports as aten.index.Tensor, whose indices come in a list: the lookup still counts
    one per looked-up element, and the float32 table is measured as a weight (32 bits)."""
    class Indexed(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Parameter(torch.randn(256, 10))

        def forward(self, x):
            level = (x[:, 0, 0, 0] * 255).round().clamp(0, 255).long()
            if how == "index":
                return self.table[level]
            if how == "index_select":
                return self.table.index_select(0, level)
            return self.table.gather(0, level.view(-1, 1).expand(-1, 10))

    p = measured(Indexed(), tmp_path)
    assert p["params"] == 2560 and p["macs"] == 10 and p["measured"]["weight_bits"] == 32


def test_a_pooling_sum_costs_one_accumulate_per_input(tmp_path):
    """avg_pool2d with divisor_override=1 sums windows: a reduction like any other."""
    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 16 * 16, 10, bias=False)

        def forward(self, x):
            return self.fc(F.avg_pool2d(x, 2, divisor_override=1).flatten(1))

    p = measured(Pooled(), tmp_path)
    assert p["params"] == 768 * 10 and p["macs"] == 3 * HW + 768 * 10


def test_numbers_written_into_the_graph_are_weights(tmp_path):
    """A weight written as literals of the graph: 40 distinct numbers, each a scale of the image's
    mean in one class; the first LITERAL_ALLOWANCE distinct numbers of a graph are free."""
    values = [round(0.01 * (i + 1), 2) for i in range(40)]

    class Literal(nn.Module):
        def forward(self, x):
            m = x.mean(dim=(1, 2, 3))
            cols = [m * values[4 * c] + m * values[4 * c + 1] - m * values[4 * c + 2] + values[4 * c + 3]
                    for c in range(10)]
            return torch.stack(cols, dim=1)

    p = measured(Literal(), tmp_path)
    literal = next(r for r in p["layers"] if r["layer"] == "(graph literals)")
    # the 40 numbers are the graph's only values (the mean's dimensions and stack's are sizes)
    assert literal["params"] == p["params"] == 40 - ops.LITERAL_ALLOWANCE
    assert p["macs"] == 3 * HW + 10 * 2  # the mean; two additions of image-dependent terms per class


def test_a_storage_shared_by_two_tensors_counts_once(tmp_path):
    """A buffer that is a view of a parameter's storage: its elements are already counted."""
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(10, 3 * HW))
            self.register_buffer("top", self.w.data[:5])  # the first five rows, same storage

        def forward(self, x):
            f = x.flatten(1)
            return F.linear(f, self.w) + F.linear(f, self.top).sum(1, keepdim=True)

    p = measured(Shared(), tmp_path)
    assert p["params"] == 10 * 3 * HW  # one storage
    # two matrix products, the sum of 5 outputs, and adding it to each of the 10 logits
    assert p["macs"] == 10 * 3 * HW + 5 * 3 * HW + 5 + 10


def test_a_mask_over_a_broadcast_partner_is_a_weight(tmp_path):
    """A 0/1 tensor multiplied by a per-channel scale stored as an expanded view: the partner stores
    8 numbers, so the mask is no pruning mask; it carries the weight and counts in full."""
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            gen = torch.Generator().manual_seed(0)
            self.register_buffer("mask", (torch.rand(8, 3, 3, 3, generator=gen) > 0.5).float())
            self.register_buffer("scale", torch.rand(8, 1, 1, 1, generator=gen).expand(8, 3, 3, 3))
            self.fc = nn.Linear(8 * HW, 10, bias=False)

        def forward(self, x):
            return self.fc(F.conv2d(x, self.mask * self.scale, padding=1).flatten(1))

    p = measured(Masked(), tmp_path)
    zeros = int((Masked().mask == 0).sum())  # 117: the weight's zeros are the mask's stored zeros
    assert p["params"] == 216 + 8 + 8 * HW * 10  # the mask's 216 elements and the 8 scales count
    assert p["measured"]["unstructured_pruning"] == pytest.approx(zeros / p["params"])


def test_the_batch_size_only_sizes_dimension_zero(tmp_path):
    """A graph that computes with its batch size is refused, naming the operator; one that only
    reshapes with it is judged."""
    class Reshapes(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * HW, 10)

        def forward(self, x):
            return self.fc(x.view(x.shape[0], -1))

    class Counts(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * HW, 10)

        def forward(self, x):
            return self.fc(x.flatten(1)) * (x.shape[0] == 16)  # a decoy on the 16-image probe

    from harness.measure import archive

    assert measured(Reshapes(), tmp_path)["macs"] == 3 * HW * 10
    path = exported(Counts(), tmp_path, "counts.pt2")
    with pytest.raises(BatchSizeError, match="computes with its batch size"):
        graph_module.Graph(archive.read(path), torch.device("cpu"))


def test_a_graph_beyond_the_budget_is_refused_before_it_runs(tmp_path):
    """An expand to 2^40 elements is refused on the meta device, in well under a second."""
    import time

    from harness.measure import archive

    class Bomb(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * HW, 10)

        def forward(self, x):
            big = x.flatten(1)[:, :1].unsqueeze(2).expand(-1, 2**20, 2**20)
            return self.fc(x.flatten(1)) + big.sum(dim=(1, 2)).unsqueeze(1)

    program = archive.read(exported(Bomb(), tmp_path))
    start = time.perf_counter()
    with pytest.raises(graph_module.BudgetError, match="beyond the judge's budget"):
        graph_module.bound(program, 16)
    assert time.perf_counter() - start < 30  # bounded in seconds, not the 30-minute limit


def test_a_pruned_layer_run_twice_counts_its_weights_once(tmp_path):
    """The contract's honest pruning (torch.nn.utils.prune in the factory: weight_orig and
    weight_mask in the weights) on a layer called twice, as flip averaging does: 216 weights, the
    mask's zeros its pruning, whether the layer runs once or twice."""
    import torch.nn.utils.prune as prune

    class Twice(nn.Module):
        def __init__(self, runs: int):
            super().__init__()
            self.runs = runs
            self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            prune.l1_unstructured(self.conv, "weight", amount=0.5)
            self.fc = nn.Linear(8 * HW, 10, bias=False)

        def forward(self, x):
            out = self.fc(self.conv(x).flatten(1))
            if self.runs == 2:
                out = (out + self.fc(self.conv(x.flip(3)).flatten(1))) / 2
            return out

    (tmp_path / "1").mkdir(), (tmp_path / "2").mkdir()
    once, twice = measured(Twice(1), tmp_path / "1"), measured(Twice(2), tmp_path / "2")
    assert once["params"] == twice["params"] == 216 + 8 * HW * 10
    assert once["measured"]["unstructured_pruning"] == twice["measured"]["unstructured_pruning"] \
        == pytest.approx(108 / (216 + 8 * HW * 10))


def test_an_element_is_pruned_only_if_zero_in_every_use(tmp_path):
    """A weight used pruned (times its mask) in one convolution and whole in another earns no
    pruning credit for the elements the second use reads."""
    import torch.nn.utils.prune as prune

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            prune.l1_unstructured(self.conv, "weight", amount=0.5)
            self.fc = nn.Linear(8 * HW, 10, bias=False)

        def forward(self, x):
            pruned = self.conv(x)
            whole = F.conv2d(x, self.conv.weight_orig, padding=1)
            return self.fc((pruned + whole).flatten(1))

    p = measured(Mixed(), tmp_path)
    assert p["measured"]["unstructured_pruning"] == 0.0
