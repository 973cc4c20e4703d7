"""Weights and MACs of tiny networks, against counts worked out by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness import counting, measure

X1 = torch.rand(1, 3, 32, 32)
HW = 32 * 32  # output positions of a 'same' convolution on a CIFAR image


def macs(model, x=X1):
    return counting.count(model.eval(), x).macs


def test_conv_with_bias():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    c = counting.count(conv, X1)
    assert c.params == 3 * 8 * 9 + 8 == 224
    assert c.macs == 8 * 3 * 9 * HW == 221_184  # bias additions are not MACs


def test_strided_conv_counts_output_positions():
    assert macs(nn.Conv2d(3, 4, 3, stride=2, padding=1)) == 4 * 3 * 9 * 16 * 16


def test_grouped_and_depthwise_conv():
    x = torch.rand(1, 8, 32, 32)
    grouped = nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False)  # weight [16, 2, 3, 3]
    depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)  # weight [8, 1, 3, 3]
    assert counting.count_params(grouped) == 288 and macs(grouped, x) == 288 * HW == 294_912
    assert counting.count_params(depthwise) == 72 and macs(depthwise, x) == 72 * HW == 73_728


def test_linear_and_batch_is_per_image():
    fc = nn.Linear(512, 10)
    assert counting.count(fc, torch.rand(7, 512)).macs == 512 * 10
    assert counting.count_params(fc) == 5130


def test_linear_on_sequences_counts_every_row():
    fc = nn.Linear(4, 6, bias=False)
    assert counting.count(fc, torch.rand(1, 5, 4)).macs == 5 * 4 * 6


def test_frozen_and_shared_parameters():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(10, 10, bias=False)
            self.fc.weight.requires_grad = False

        def forward(self, x):
            return self.fc(self.fc(x))  # the same weights used twice

    c = counting.count(Net().eval(), torch.rand(1, 10))
    assert c.params == 100  # counted once, although frozen
    assert c.macs == 200  # executed twice


def test_functional_custom_module():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.kernel = nn.Parameter(torch.randn(4, 3, 5, 5))
            self.proj = nn.Parameter(torch.randn(4 * 28 * 28, 10))

        def forward(self, x):
            y = F.conv2d(x, self.kernel)  # 28 x 28 output
            return y.flatten(1) @ self.proj

    c = counting.count(Custom().eval(), X1)
    assert c.params == 300 + 4 * 28 * 28 * 10
    assert c.macs == 4 * 3 * 25 * 28 * 28 + 4 * 28 * 28 * 10
    assert [r.op for r in c.ops] == ["conv", "linear"]


def test_prune_mask_counts_weight_orig_once_and_sees_zeros():
    import torch.nn.utils.prune as prune

    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    prune.l1_unstructured(conv, "weight", amount=0.5)
    assert {n for n, _ in conv.named_parameters()} == {"weight_orig"}
    prof = measure.profile(nn.Sequential(conv, nn.Flatten(), nn.Linear(8 * HW, 10, bias=False)).eval(),
                           torch.rand(2, 3, 32, 32))
    assert prof["params"] == 216 + 8 * HW * 10
    conv_row = prof["layers"][0]
    assert conv_row["params"] == 216 and conv_row["zeros"] == 108  # the mask's zeros, as the forward used them


def test_physically_channel_pruned_model_counts_real_shapes():
    full = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))
    pruned = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.Conv2d(5, 8, 3, padding=1))
    assert macs(full) == (8 * 3 * 9 + 8 * 8 * 9) * HW
    assert macs(pruned) == (5 * 3 * 9 + 8 * 5 * 9) * HW
    assert counting.count_params(pruned) == 5 * 27 + 5 + 8 * 45 + 8


def test_brevitas_quant_layers_are_counted():
    qnn = pytest.importorskip("brevitas.nn")
    model = nn.Sequential(
        qnn.QuantIdentity(bit_width=4),
        qnn.QuantConv2d(3, 8, 3, padding=1, weight_bit_width=4, bias=False),
        qnn.QuantReLU(bit_width=4),
        nn.Flatten(),
        qnn.QuantLinear(8 * HW, 10, bias=True, weight_bit_width=4),
    ).eval()
    prof = measure.profile(model, torch.rand(4, 3, 32, 32))
    assert prof["macs"] == 8 * 27 * HW + 8 * HW * 10
    assert prof["params"] == sum(p.numel() for p in model.parameters())  # scales included
    assert prof["measured"]["weight_bits"] == 4 and prof["measured"]["activation_bits"] == 4
    assert [r["op"] for r in prof["layers"][:2]] == ["conv", "linear"]
    assert sum(r["params"] for r in prof["layers"]) == prof["params"]


class _TwoViews(nn.Module):
    """Runs its 4-bit network on the image and on a second view of it, averaging the logits."""

    def __init__(self, view):
        super().__init__()
        qnn = pytest.importorskip("brevitas.nn")
        self.view = view
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.quant = qnn.QuantIdentity(bit_width=4)
        self.head = nn.Linear(8 * HW, 10, bias=False)

    def forward(self, x):
        return sum(self.head(self.quant(self.conv(v)).flatten(1)) for v in (x, self.view(x))) / 2


def test_a_flipped_view_of_the_image_is_the_image():
    prof = measure.profile(_TwoViews(lambda x: x.flip(3)).eval(), torch.rand(4, 3, 32, 32))
    assert prof["macs"] == 2 * (8 * 27 * HW + 8 * HW * 10)  # both passes count
    assert prof["params"] == 8 * 27 + 8 * HW * 10 + 1  # once each (+ the quantiser's learned scale)
    assert [r.get("activation_bits") for r in prof["layers"] if r["op"] != "params"] == [None, 4, None, 4]
    assert prof["measured"]["activation_bits"] == 4


def test_a_changed_image_is_an_activation():
    prof = measure.profile(_TwoViews(lambda x: x.flip(3) * 1.5).eval(), torch.rand(4, 3, 32, 32))
    assert [r.get("activation_bits") for r in prof["layers"] if r["op"] != "params"] == [None, 4, 32, 4]
    assert prof["measured"]["activation_bits"] == 32


def test_unknown_operation_is_reported_not_silently_zero():
    class Spectral(nn.Module):
        def forward(self, x):
            return torch.fft.rfft2(x).abs().flatten(1)[:, :10]

    c = counting.count(Spectral(), X1)
    assert c.uncounted and all("fft" in name for name in c.uncounted)


def test_attention_is_counted():
    q = k = v = torch.rand(1, 2, 16, 8)

    class Attn(nn.Module):
        def forward(self, x):
            return F.scaled_dot_product_attention(q, k, v)

    c = counting.count(Attn(), X1)
    assert c.macs == 2 * 16 * 16 * (8 + 8) and not c.uncounted


def test_receipt_rows_add_up_to_params():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()
    prof = measure.profile(model, torch.rand(2, 3, 32, 32))
    assert sum(r["params"] for r in prof["layers"]) == prof["params"] == 224 + 16 + 90
    assert {"layer": "1", "op": "params", "params": 16, "macs": 0} in prof["layers"]


def test_agrees_with_ptflops_aten_backend():
    from ptflops import get_model_complexity_info

    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(16, 16, 3, groups=4,
                          bias=False), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 10, bias=False)).eval()
    ref, _ = get_model_complexity_info(model, (3, 32, 32), backend="aten", as_strings=False,
                                       print_per_layer_stat=False)
    assert macs(model) == ref
