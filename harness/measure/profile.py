"""Count and measure a prepared graph on a batch: the numbers of a record, and the receipt.

The cost model is stated once, in `harness.ops`. Here:

* `params` (w): every element of every stored tensor the graph reads (parameters, buffers,
  lifted constants alike; a storage shared by several tensors once), except pruning masks and
  the tensors of batch norms that fold (one number per channel each instead); plus the distinct
  literal numbers of the graph beyond `ops.LITERAL_ALLOWANCE`; plus, for a weight operand with
  more elements than the stored tensors it is prepared from, the difference.
* `macs` (f): the counted operations' MACs for the batch, divided by its size.
* Pruning, per stored element: an element is pruned only when it is zero in every use (in each
  weight operand of a convolution or matrix product prepared from it element for element, and as
  stored wherever else it is read). `structured` = elements of output channels entirely zero,
  `unstructured` = the other pruned elements; both over w, within [0, 1].
* `structured_mac_share`: the share of f that the zero output channels carry; the score credits
  structured pruning on the MAC term up to this share only (`harness.score`).
* Bits (`harness.measure.bits`): weight bits, the most over every use of every weight operand;
  activation bits, the most over image-dependent operands, the image itself (moved or scaled by
  stored numbers) exempt.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import ops
from ..errors import RunError
from ..jobs import MeasureResult
from ..record import Compression, Layer
from . import bits, pruning
from .archive import Ref, module_of
from .graph import Graph


def profile(graph: Graph, x: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """The measured numbers of `graph` on the batch `x` (N images), a JSON-ready mapping, and
    the logits of that batch."""
    out, steps = graph.trace(x)
    n = x.shape[0]
    finite(check_output(out, n), 0)
    stored, sizes = graph.program.stored, graph.program.storage_sizes
    counted = _counted_storages(graph)
    masks = pruning.Masks(graph, counted)
    owner: dict[str, int] = {}  # storage file -> row index
    rows: list[dict] = []
    w_bits: list[int] = []
    a_bits: list[int] = []
    extra: dict[tuple, tuple[int, int]] = {}  # weight operand -> (row, elements beyond what it is prepared from)
    weight_bits: dict[tuple, int] = {}  # a weight used twice (test-time flip averaging) is measured once
    for step in steps:
        row: dict[str, Any] = {"layer": step.label[:200], "op": step.kind, "params": 0, "macs": step.macs // n,
                               NODE: step.node}
        for o in step.operands:
            if o.role == "weight":
                # the same prepared tensor in two uses (flip averaging) is measured once; another
                # tensor prepared from the same stored ones (a raw use beside a quantised one) again
                key = (o.sources, tuple(o.value.shape), o.dim, o.value.data_ptr())
                if key not in weight_bits or not o.sources:
                    weight_bits[key] = bits.bits(o.value, o.dim)
                b = weight_bits[key]
                row["weight_bits"] = max(row.get("weight_bits", 1), b)
                w_bits.append(b)
                files = {counted[s] for s in o.sources if s in counted}
                short = _own_elements(o, step) - sum(sizes.get(f, 0) for f in files)
                if short > 0 and short > extra.get(key, (0, 0))[1]:
                    extra[key] = (len(rows), short)
                masks.use(step, o)
                for f in files:
                    owner.setdefault(f, len(rows))
            elif o.role == "activation":
                b = bits.bits(o.value, o.dim if o.dim is not None else None)
                row["activation_bits"] = max(row.get("activation_bits", 1), b)
                a_bits.append(b)
        rows.append(row)
    for i, short in extra.values():
        rows[i]["params"] += short
    assigned: set[str] = set()
    for name, file in counted.items():
        if file in assigned:
            continue
        assigned.add(file)
        _row_of(rows, owner, file, module_of(stored[name].fqn))["params"] += sizes.get(file, 0)
    for label, channels in _folded_norms(graph).items():
        _row_of(rows, owner, f"norm:{label}", label)["params"] += channels
    literal = literals(graph)
    if literal > ops.LITERAL_ALLOWANCE:
        rows.append({"layer": "(graph literals)", "op": "params", "params": literal - ops.LITERAL_ALLOWANCE,
                     "macs": 0})
    params = sum(r["params"] for r in rows)
    macs = sum(r["macs"] for r in rows)
    total = max(params, 1)
    zeros_s, zeros_u, share = masks.totals(steps)
    p_s = min(1.0, zeros_s / total)
    for i, z, zs in masks.by_row(owner):
        rows[i]["zeros"] = rows[i].get("zeros", 0) + z
        rows[i]["structured_zeros"] = rows[i].get("structured_zeros", 0) + zs
    measured = {
        "structured_pruning": p_s,
        "unstructured_pruning": min(1.0 - p_s, zeros_u / total),
        "weight_bits": max(w_bits, default=32),
        "activation_bits": max(a_bits, default=1),
    }
    return {"params": params, "macs": macs, "layers": rows, "measured": measured, "structured_mac_share": share}, out


NODE = "_node"  # a row's graph operation, while the predicted batches are still being measured


def worst(result: dict, seen: dict[str, tuple[int, int]]) -> None:
    """Lay what the predicted batches showed over the probe's numbers: for each counted operation
    the most MACs per image and the most activation bits seen (its weights do not change)."""
    rows = result["layers"]
    for row in rows:
        macs, b = seen.get(row.get(NODE), (0, 1))
        row["macs"] = max(row["macs"], macs)
        if "activation_bits" in row or b > 1:
            row["activation_bits"] = max(row.get("activation_bits", 1), b)
    result["macs"] = sum(r["macs"] for r in rows)
    measured = result["measured"]
    measured["activation_bits"] = max([measured["activation_bits"]] + [r.get("activation_bits") or 1 for r in rows])


def finish(result: dict) -> MeasureResult:
    """The typed result (`harness.jobs.MeasureResult`), built here, where a wrong number is this
    stage's bug, without the working keys of its rows."""
    layers = [Layer(**{k: v for k, v in row.items() if k != NODE}) for row in result["layers"]]
    return MeasureResult(**{**result, "layers": layers, "measured": Compression(**result["measured"])})


def literals(graph: Graph) -> int:
    """Distinct literal numbers the graph's operations take as values (not as sizes or dimensions):
    numbers written into the graph, such as an epsilon, a scale or the fill of a created tensor."""
    found: set[float] = set()
    for node in graph.nodes:
        for kind, value in ops.typed_args(node.op, node.args, node.kwargs):
            if _is_value(kind):
                for v in value if isinstance(value, (list, tuple)) else [value]:
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        found.add(float(v))
    return len(found)


def _own_elements(o, step) -> int:
    """The elements a weight operand holds: all of them, except that a weight repeated over a batch
    of matrix products (export's expand of a linear layer's weight to the batch, stride 0) holds
    one matrix."""
    v = o.value
    if step.kind == ops.MATMUL and v.dim() >= 3 and v.stride(0) == 0:
        return v.numel() // max(v.shape[0], 1)
    return v.numel()


def _is_value(kind: str) -> bool:
    return any(word in kind for word in ("Tensor", "Scalar", "float", "number"))


def _row_of(rows: list[dict], owner: dict, key: str, label: str) -> dict:
    """The receipt row a stored number belongs to: the first step that used it, else its module's
    row (a layer's bias and scales join it; a norm's get one of their own)."""
    if key not in owner:
        owner[key] = next((i for i, r in enumerate(rows) if r["layer"] == label), len(rows))
        if owner[key] == len(rows):
            rows.append({"layer": label, "op": "params", "params": 0, "macs": 0})
    return rows[owner[key]]


def _folded_norms(graph: Graph) -> dict[str, int]:
    """Module label -> channels, for each batch norm that folds (its stored tensors counted once)."""
    found: dict[frozenset, tuple[str, int]] = {}
    for node in graph.steps:
        if id(node) not in graph.folded:
            continue
        names = frozenset(a.name for a in node.args[1:5] if isinstance(a, Ref) and a.name in graph.program.stored)
        if not names or names in found:
            continue
        first = graph.program.stored[sorted(names)[0]]
        found[names] = (module_of(first.fqn), int(first.tensor.shape[0]) if first.tensor.dim() else 1)
    out: dict[str, int] = {}
    for label, channels in found.values():
        out[label] = out.get(label, 0) + channels
    return out


def check_output(out: object, n: int) -> torch.Tensor:
    """The logits tensor of a batch of `n` images, or a clear error."""
    from ..errors import SubmissionError

    if not isinstance(out, torch.Tensor):
        raise SubmissionError(f"model output is {type(out).__name__}, expected a tensor of shape [N, 10]")
    if tuple(out.shape) != (n, 10):
        raise SubmissionError(f"model output has shape {list(out.shape)} for {n} images, expected [{n}, 10]")
    return out


def finite(out: torch.Tensor, start: int) -> torch.Tensor:
    bad = ~torch.isfinite(out).all(dim=1)
    if bad.any():
        first = start + int(bad.nonzero()[0])
        raise RunError(f"model output holds NaN or infinite values for {int(bad.sum())} image(s), first image {first}")
    return out


def _counted_storages(graph: Graph) -> dict[str, str]:
    """Stored tensor name -> archive file, for the tensors that count in w: read by the graph, not
    only by batch norms that fold, and not a pruning mask."""
    stored = graph.program.stored
    uses: dict[str, list[tuple]] = {}
    for node in graph.nodes:
        for i, a in enumerate(list(node.args) + list(node.kwargs.values())):
            for r in a if isinstance(a, list) else [a]:
                if isinstance(r, Ref):
                    uses.setdefault(r.name, []).append((node, i))
    counted = {}
    for name in stored:
        where = uses.get(name, [])
        if not where or all(id(node) in graph.folded and 1 <= i <= 4 for node, i in where):
            continue  # never read, or only by batch norms that fold (counted per channel)
        if _mask(graph, name, uses):
            continue
        counted[name] = stored[name].storage
    return counted


_CASTS = ("aten.to.dtype", "aten._to_copy.default", "aten.type_as.default")


def _mask(graph: Graph, name: str, uses: dict) -> bool:
    """A pruning mask (torch.nn.utils.prune's weight_mask): 0/1 values, each use (after a dtype
    cast) a product with a stored weight of the same shape. Its zeros show in that product,
    which is what counts."""
    t = graph.program.stored[name].tensor
    if t.numel() < 2 or not _is_01(t):
        return False
    factors: list[tuple] = []
    todo = list(uses.get(name, []))
    while todo:  # through casts, and casts of casts (a layer called twice casts its mask again)
        node, i = todo.pop()
        if node.op.name in _CASTS and i == 0 and len(node.outputs) == 1 and len(factors) + len(todo) < 10_000:
            todo += uses.get(node.outputs[0], [])
        else:
            factors.append((node, i))
    for node, i in factors:
        if node.op.name != "aten.mul.Tensor" or i > 1 or not isinstance(node.args[1 - i], Ref):
            return False
        partner = graph.program.stored.get(node.args[1 - i].name)
        if partner is None or tuple(partner.tensor.shape) != tuple(t.shape) or _is_01(partner.tensor) \
                or graph.program.storage_sizes.get(partner.storage, 0) < t.numel():
            return False  # a mask prunes a weight that really stores as many elements
    return bool(factors)


def _is_01(t) -> bool:
    return bool(((t == 0) | (t == 1)).all())
