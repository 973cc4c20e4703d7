"""The batch size gives the size of dimension 0, and nothing else.

A graph exported with a dynamic batch reads its batch size as a symbol (`sym_size` of an
image-dependent tensor). A graph that computes with it could behave one way on a batch of one
size and another way on batches of another size: a decoy on the probe, the real network on the
predicted batches. So a batch symbol may be read only as an element of a size argument (a list of
sizes: `view`, `reshape`, `expand`, the size of a created tensor), or multiplied by a number or by
another such symbol (`B * heads` for attention's reshapes) whose product obeys the same rule.
Arithmetic of any other kind, comparisons, slicing, indexing or turning it into a tensor refuse
the graph, naming the operator.
"""

from __future__ import annotations

from .. import ops
from ..errors import SubmissionError
from .archive import Node, Ref

_SYMBOLS = ("aten.sym_size.int", "aten.sym_numel.default", "aten.sym_stride.int", "aten.sym_storage_offset.default")
_PRODUCT = "_operator.mul"


class BatchSizeError(SubmissionError):
    """The graph computes with its batch size."""


def check(nodes: list[Node], tainted: set[str]) -> None:
    """Refuse `nodes` (the live operations, in order) if a batch symbol is read other than as a size."""
    symbols: set[str] = set()
    for node in nodes:
        reads = [(kind, a) for kind, a in ops.typed_args(node.op, node.args, node.kwargs) if _reads(a, symbols)]
        if node.op.name in _SYMBOLS:
            if any(isinstance(a, Ref) and a.name in tainted for a in node.args[:1]):
                symbols.update(o for o in node.outputs if isinstance(o, str))
            continue
        if not reads:
            continue
        if node.op.name == _PRODUCT and all(isinstance(a, int) or (isinstance(a, Ref) and a.name in symbols)
                                            for a in node.args):
            symbols.update(o for o in node.outputs if isinstance(o, str))
            continue
        for kind, a in reads:
            if not (kind.startswith("List[") and "int" in kind.lower() and isinstance(a, (list, tuple))):
                raise BatchSizeError(
                    f"the graph computes with its batch size: {node.op.name} reads it (operation {node.name!r}). "
                    "The batch size may only be the size of dimension 0 (x.view(x.shape[0], -1), x.flatten(1)); "
                    "a model must answer each image alike whatever the batch")


def _reads(value, symbols: set[str]) -> bool:
    if isinstance(value, Ref):
        return value.name in symbols
    if isinstance(value, (list, tuple)):
        return any(_reads(v, symbols) for v in value)
    return False
