"""Count and measure a prepared graph on a probe batch: the numbers of a record, and the receipt.

* `params` (w): every element of every tensor the graph stores and reads (parameters, buffers,
  lifted constants alike; a file shared by several tensors once), except normalisation running
  statistics. Stored tensors the graph never reads do not count.
* `macs` (f): the counted operations' MACs for the probe batch, divided by its size (rules in
  `harness.measure.ops`).
* Pruning, on distinct stored elements: the zeros of each weight operand of a convolution or
  matrix product (once per set of stored tensors it was prepared from, and never more zeros than
  those tensors hold): `structured` = elements of output channels that are entirely zero,
  `unstructured` = the other zeros; both over w, within [0, 1].
* `structured_mac_share`: the share of f that the zero output channels carry; the score credits
  structured pruning on the MAC term up to this share only (`harness.score`).
* Bits (`harness.measure.bits`): weight bits, the most over weight operands; activation bits,
  the most over image-dependent operands, the image itself (moved or scaled by stored numbers)
  exempt.
"""

from __future__ import annotations

import torch

from ..errors import RunError
from . import bits, ops
from .archive import Ref, module_of
from .graph import Graph


def profile(graph: Graph, x: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """The measured numbers of `graph` on the probe batch `x` (N images), a JSON-ready mapping,
    and the logits of that batch."""
    out, steps = graph.trace(x)
    n = x.shape[0]
    finite(check_output(out, n), 0)
    stored = graph.program.stored
    counted = _counted_storages(graph)
    params = sum(graph.program.storage_sizes.get(f, 0) for f in counted.values())
    owner = {}  # storage file -> row index
    rows, w_bits, a_bits = [], [], []
    zeros_s = zeros_u = 0
    seen: set[frozenset] = set()
    claimed: set[str] = set()
    mac_total = sum(s.macs for s in steps)
    zero_macs = 0.0
    weight_bits: dict[tuple, int] = {}  # a weight used twice (test-time flip averaging) is measured once
    for step in steps:
        row = {"layer": step.label[:200], "op": step.kind, "params": 0, "macs": step.macs // n}
        for o in step.operands:
            if o.role == "weight":
                key = (o.sources, tuple(o.value.shape), o.dim)
                if key not in weight_bits or not o.sources:
                    weight_bits[key] = bits.bits(o.value, o.dim)
                b = weight_bits[key]
                row["weight_bits"] = max(row.get("weight_bits", 1), b)
                w_bits.append(b)
                if step.kind in (ops.CONV, ops.MATMUL) and o.dim is not None:
                    s, u, dead_share = _zeros(o, seen, claimed, stored, graph.program.storage_sizes)
                    zeros_s, zeros_u = zeros_s + s, zeros_u + u
                    row["zeros"] = row.get("zeros", 0) + s + u
                    row["structured_zeros"] = row.get("structured_zeros", 0) + s
                    zero_macs += step.macs * dead_share
                for src in o.sources:
                    file = counted.get(src)
                    if file is not None and file not in owner:
                        owner[file] = len(rows)
            elif o.role == "activation":
                b = bits.bits(o.value, o.dim if o.dim is not None else None)
                row["activation_bits"] = max(row.get("activation_bits", 1), b)
                a_bits.append(b)
        rows.append(row)
    assigned: set[str] = set()
    for name, file in counted.items():
        if file in assigned:
            continue
        assigned.add(file)
        size = graph.program.storage_sizes.get(file, 0)
        label = module_of(stored[name].fqn)
        if file not in owner:  # a layer's other tensors (bias, scales) join its row; a norm's get one
            key = f"module:{label}"
            owner.setdefault(key, next((i for i, r in enumerate(rows) if r["layer"] == label), len(rows)))
            owner[file] = owner.get(key, len(rows))
            if owner[file] == len(rows):
                rows.append({"layer": label, "op": "params", "params": 0, "macs": 0})
                owner[key] = owner[file]
        rows[owner[file]]["params"] += size
    macs = sum(r["macs"] for r in rows)
    total = max(params, 1)
    p_s = min(1.0, zeros_s / total)
    measured = {
        "structured_pruning": p_s,
        "unstructured_pruning": min(1.0 - p_s, zeros_u / total),
        "weight_bits": max(w_bits, default=32),
        "activation_bits": max(a_bits, default=1),
    }
    share = min(1.0, zero_macs / mac_total) if mac_total else 0.0
    return {"params": params, "macs": macs, "layers": rows, "measured": measured, "structured_mac_share": share}, out


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
    only as normalisation running statistics, and not a pruning mask."""
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
        if not where or all(i in node.op.stats for node, i in where):
            continue  # never read, or running statistics only
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
    factors = []
    for node, i in uses.get(name, []):
        if node.op.name in _CASTS and i == 0 and len(node.outputs) == 1:
            factors += uses.get(node.outputs[0], [])
        else:
            factors.append((node, i))
    for node, i in factors:
        if node.op.name != "aten.mul.Tensor" or i > 1 or not isinstance(node.args[1 - i], Ref):
            return False
        partner = graph.program.stored.get(node.args[1 - i].name)
        if partner is None or tuple(partner.tensor.shape) != tuple(t.shape) or _is_01(partner.tensor):
            return False
    return bool(factors)


def _is_01(t) -> bool:
    return bool(((t == 0) | (t == 1)).all())


def _zeros(o, seen: set, claimed: set, stored: dict, sizes: dict) -> tuple[int, int, float]:
    """(structured, unstructured) zeros of a weight operand on distinct stored elements, and the
    share of its output channels that are entirely zero."""
    w = o.value.detach().movedim(o.dim, 0)
    structured, unstructured = bits.zeros(w)
    share = structured / w.numel() if w.numel() else 0.0  # dead channels' share of the channels
    if o.sources in seen:
        return 0, 0, share
    seen.add(o.sources)
    files = {stored[s].storage for s in o.sources} - claimed
    claimed.update(files)
    scale = min(1.0, sum(sizes.get(f, 0) for f in files) / max(w.numel(), 1))  # never more than stored
    return int(structured * scale), int(unstructured * scale), share
