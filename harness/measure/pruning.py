"""Pruning, per stored element: an element is pruned only when it is zero in every use.

A stored tensor is used as the weight operand of a convolution or matrix product, element for
element (itself, or prepared from it: fake-quantised, multiplied by a pruning mask), or it is read
in any other way (a bias, a scale, an operand of a pointwise product, data moved into an
activation). Its element counts as pruned when the operand is zero there in every use of the
first kind and the stored element itself is zero wherever it is read in the second. Only tensors
used at least once as such a weight operand earn pruning credit; structure (output channels
entirely zero) is read in the shape of that operand.
"""

from __future__ import annotations

import torch

from .. import ops
from .archive import Ref

_WEIGHT_KINDS = (ops.CONV, ops.MATMUL)


class Masks:
    """Zero masks of the counted storages over every use, filled as the traced steps are read."""

    def __init__(self, graph, counted: dict[str, str]):
        self.graph, self.counted = graph, counted
        self.sizes = graph.program.storage_sizes
        self.zero: dict[str, torch.Tensor] = {}  # storage file -> flat mask of elements zero so far
        self.layout: dict[str, tuple] = {}  # storage file -> (operand shape, output-channel dim)
        self.weighted: list[tuple[int, str]] = []  # (MACs of a step, storage file of its weight)
        for node, (kind, operands) in zip(graph.steps, graph.plan, strict=True):
            keep = {o.pos for o in operands if o.weight_dim is not None} if kind in _WEIGHT_KINDS else set()
            for i, a in enumerate(list(node.args) + list(node.kwargs.values())):
                for r in a if isinstance(a, (list, tuple)) else [a]:
                    if isinstance(r, Ref) and r.name not in graph.tainted and i not in keep:
                        for src in graph.sources.get(r.name, ()):
                            self._as_stored(src)

    def use(self, step, o) -> None:
        """A weight operand `o` of a traced step."""
        files = {self.counted[s]: s for s in o.sources if s in self.counted}
        if step.kind not in _WEIGHT_KINDS or o.dim is None:
            for src in files.values():
                self._as_stored(src)
            return
        matching = [f for f in files if self.sizes.get(f, 0) == o.value.numel()]
        for f, src in files.items():
            if len(matching) != 1 or f != matching[0]:
                self._as_stored(src)
        if len(matching) == 1:
            f = matching[0]
            self._and(f, (o.value.detach() == 0).reshape(-1).cpu())
            self.layout.setdefault(f, (tuple(o.value.shape), o.dim))
            self.weighted.append((step.macs, f))

    def totals(self, steps) -> tuple[int, int, float]:
        """(structured, unstructured) pruned elements, and the share of f in zero output channels."""
        s_total = u_total = 0
        for f in self.layout:
            s, u = self._split(f)
            s_total, u_total = s_total + s, u_total + u
        mac_total = sum(st.macs for st in steps)
        dead = sum(macs * self._dead_share(f) for macs, f in self.weighted)
        return s_total, u_total, (min(1.0, dead / mac_total) if mac_total else 0.0)

    def by_row(self, owner: dict) -> list[tuple[int, int, int]]:
        """(row, pruned elements, structured ones) for each storage with credit."""
        out = []
        for f in self.layout:
            if f in owner:
                s, u = self._split(f)
                out.append((owner[f], s + u, s))
        return out

    def _as_stored(self, src: str) -> None:
        stored = self.graph.program.stored[src]
        f = self.counted.get(src)
        if f is None:
            return
        t = stored.tensor
        if t.numel() == self.sizes.get(f, -1):
            self._and(f, (t.detach() == 0).reshape(-1).cpu())
        else:  # a view of part of its storage: no element of it is credited
            self._and(f, torch.zeros(self.sizes.get(f, 0), dtype=torch.bool))

    def _and(self, f: str, mask: torch.Tensor) -> None:
        self.zero[f] = mask if f not in self.zero else self.zero[f] & mask

    def _channels(self, f: str) -> torch.Tensor:
        shape, dim = self.layout[f]
        return self.zero[f].reshape(shape).movedim(dim, 0).reshape(shape[dim], -1)

    def _split(self, f: str) -> tuple[int, int]:
        m = self._channels(f)
        dead = m.all(dim=1)
        return int(dead.sum()) * m.shape[1], int(m[~dead].sum())

    def _dead_share(self, f: str) -> float:
        m = self._channels(f)
        return float(m.all(dim=1).float().mean()) if m.shape[0] else 0.0
