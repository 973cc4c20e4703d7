"""Run an exported program's operations, in order, with the table's functions: the one graph that
is both counted and evaluated.

`Graph(program, device, ...)` prepares the program once: it drops operations whose results never
reach the output, marks every value as image-dependent or not, runs the operations on stored
tensors alone once (weight preparation, such as fake-quantising a weight) and keeps their
results. `run(x)` then evaluates the image-dependent operations for a batch; `trace(x)` does the
same and records, for each counted operation, its MACs and its multiplied operands.

A 16-bit claim is honoured here: `half_weights` rounds every stored floating tensor to float16
values; `half_inputs` rounds the image-dependent operands of counted operations to float16
values. Arithmetic stays float32 (IEEE, TF32 off) on every device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .. import ops
from ..errors import RunError
from . import shapes
from .archive import DEVICE, ArchiveError, Node, Program, Ref, module_of

# Operations that keep "the image": its values moved, or scaled by stored numbers (normalisation
# inside the model). The first layer's input is the image, exempt from activation bits.
_KEEPS_IMAGE = {"view", "_unsafe_view", "reshape", "permute", "expand", "unsqueeze", "squeeze", "select", "slice",
                "clone", "alias", "_to_copy", "to", "type_as", "flip", "cat", "constant_pad_nd", "pad", "contiguous",
                "transpose", "t", "flatten", "add", "sub", "mul", "div", "rsub"}


MAX_ELEMENTS = 2**31  # the most elements one operation may produce (8 GiB of float32)
MAX_MACS_PER_IMAGE = 10**11  # 180 times the CIFAR ResNet18


def bound(program: Program, batch: int, half_weights: bool = False, half_inputs: bool = False) -> None:
    """Refuse, in seconds, a graph whose work or memory is beyond the budget: run it once on
    torch's meta device (shapes only, no memory, no arithmetic) for a batch of `batch` images and
    check every operation's output and the MACs per image. A graph that will not run on the meta
    device is bounded by the limits of the real run instead."""
    meta = torch.device("meta")
    try:
        g = Graph(program, meta, half_weights, half_inputs)
        _, steps = g.trace(torch.empty(batch, 3, 32, 32, device=meta))
    except BudgetError:
        raise
    except Exception:  # noqa: BLE001 - an operator without a meta kernel: the real run's limits bound it
        return
    macs = sum(s.macs for s in steps) // max(batch, 1)
    if macs > MAX_MACS_PER_IMAGE:
        raise BudgetError(f"the graph would compute {macs:,} multiply-accumulates per image, beyond the "
                          f"judge's budget of {MAX_MACS_PER_IMAGE:,}")


class BudgetError(RunError):
    """The graph would need more work or memory than the judge grants."""


def _sized(node: Node, out) -> None:
    for t in out if isinstance(out, (tuple, list)) else [out]:
        if isinstance(t, torch.Tensor) and t.numel() > MAX_ELEMENTS:
            raise BudgetError(f"operation {node.name!r} ({node.op.name}) would produce {t.numel():,} elements, "
                              f"beyond the judge's budget of {MAX_ELEMENTS:,} for one operation")


@dataclass
class Operand:
    """A multiplied argument of a counted operation, as it was used."""

    role: str  # weight | activation | image
    value: torch.Tensor
    dim: int | None  # output-channel dimension for per-channel grids and structured zeros
    sources: frozenset = frozenset()  # stored tensors a weight was prepared from


@dataclass
class Step:
    """One counted operation of a traced forward pass."""

    node: str
    kind: str
    macs: int  # for the whole batch
    label: str
    operands: list[Operand] = field(default_factory=list)


class Graph:
    def __init__(self, program: Program, device: torch.device, half_weights: bool = False, half_inputs: bool = False):
        self.program, self.device, self.half_inputs = program, device, half_inputs
        live = _live(program)
        self.nodes = [n for n in program.nodes if id(n) in live]
        for node in self.nodes:
            why = node.op.check(node.args, node.kwargs) if node.op.check else None
            if why:
                raise ArchiveError(f"the graph cannot be judged: {node.op.name}: {why}")
        self.read = _read_names(self.nodes)
        self.values: dict[str, Any] = {}
        for name, s in program.stored.items():
            if name in self.read:
                t = s.tensor.to(device)
                if half_weights and t.is_floating_point():
                    t = t.half().to(t.dtype)
                self.values[name] = t
        self.sources: dict[str, frozenset] = {name: frozenset([name]) for name in self.values}
        self.tainted = {program.input}
        self.image = {program.input}
        self.steps: list[Node] = []
        for node in self.nodes:
            refs = _refs(node.args, node.kwargs)
            if any(r in self.tainted for r in refs):
                self.tainted.update(_names(node.outputs))
                self.steps.append(node)
                if _keeps_image(node, refs, self.image, self.tainted):
                    self.image.update(_names(node.outputs))
            else:  # weight preparation: run once, now
                source = frozenset().union(*(self.sources.get(r, frozenset()) for r in refs))
                out = node.op.fn(*self._resolve(node.args, self.values), **self._resolve(node.kwargs, self.values))
                _sized(node, out)
                _bind(node, out, self.values)
                for name in _names(node.outputs):
                    self.sources[name] = source
        if program.output not in self.tainted:
            raise RunError("the model's output does not depend on its input image")
        shapes.check(self.nodes, self.tainted)
        self.folded = _folded(self.steps, self.tainted, self.values)
        self.plan = [self._plan(node) for node in self.steps]
        self._last = _last_use(self.steps, program.output)

    def channels_last(self, x: torch.Tensor) -> bool:
        """Store the 4-D weights of convolutions channels_last when the graph still runs so on `x`."""
        conv_weights = {n.args[1].name for n in self.steps
                        if n.op.kind == ops.CONV and isinstance(n.args[1], Ref) and n.args[1].name in self.values}
        before = {k: self.values[k] for k in conv_weights if getattr(self.values[k], "dim", lambda: 0)() == 4}
        for k, v in before.items():
            self.values[k] = v.contiguous(memory_format=torch.channels_last)
        try:
            self.run(x)
            return True
        except Exception:  # noqa: BLE001 - an optimisation: any failure means keep the original layout
            self.values.update(before)
            return False

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The graph's output for the batch `x`."""
        return self._forward(x, None)

    def trace(self, x: torch.Tensor) -> tuple[torch.Tensor, list[Step]]:
        """The output for `x` and the counted operations it executed."""
        steps: list[Step] = []
        return self._forward(x, steps), steps

    def measure(self, x: torch.Tensor, row: int) -> tuple[torch.Tensor, dict[str, tuple[int, int]]]:
        """The output for the batch `x`, and for each counted operation (by node name) its MACs per
        image and the bits of its image-dependent operands, measured on image `row` of the batch."""
        from . import bits

        found: dict[str, tuple[int, int]] = {}

        def seen(node: Node, args: list, out, kind: str, operands: tuple) -> None:
            macs = self._macs(node, args, out, kind, frozenset())  # counted kinds: no reduction among them
            b = 1
            for spec in operands:
                ref, value = node.args[spec.pos], args[spec.pos]
                if isinstance(ref, Ref) and ref.name in self.tainted and ref.name not in self.image \
                        and isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == x.shape[0]:
                    b = max(b, bits.bits(value[row:row + 1], spec.act_dim))
            found[node.name] = (macs // x.shape[0], b)

        return self._forward(x, None, seen), found

    def _plan(self, node: Node) -> tuple[str, tuple]:
        """How a step counts, decided once from what its arguments carry: its kind (a kind of
        `harness.ops`, FREE when it costs nothing) and the operands to measure."""
        op = node.op
        taint = self._taint(node)
        stored = [i for i, a in enumerate(node.args) if isinstance(a, Ref) and not taint[i]
                  and isinstance(self.values.get(a.name), torch.Tensor) and self.values[a.name].numel() > 1]
        dependent = [i for i, t in enumerate(taint) if t]
        every = tuple(ops.Operand(i, None, None) for i in sorted(stored + dependent))
        if op.kind == ops.POINTWISE:
            if stored:
                return ops.PRODUCT, every
            packet = op.name.split(".")[1]
            if len(dependent) >= 2 and packet not in ops.SELECTIONS:
                return (ops.PRODUCT, every) if packet in ("mul", "div") else (ops.ACCUMULATE, ())
            return ops.FREE, ()
        if op.kind == ops.LOOKUP:
            if 0 in stored and any(t for t in taint[1:]):
                return ops.PRODUCT, (ops.Operand(0, None, None),)
            return ops.FREE, ()
        if op.kind == ops.NORM:
            if not taint[0] or id(node) in self.folded:
                return ops.FREE, ()
            return ops.PRODUCT, tuple(o for o in op.operands if o.pos in stored)
        return op.kind, op.operands

    def _forward(self, x: torch.Tensor, steps: list[Step] | None, seen=None):
        env = dict(self.values)
        env[self.program.input] = x
        products: set[str] = set()
        for i, node in enumerate(self.steps):
            args, kwargs = self._resolve(node.args, env), self._resolve(node.kwargs, env)
            kind, operands = self.plan[i]
            if self.half_inputs and kind in ops.COUNTED:
                args = self._round_inputs(node, args, operands)
            out = node.op.fn(*args, **kwargs)
            _sized(node, out)
            if steps is not None and kind != ops.FREE:
                step = self._step(node, args, out, products, kind, operands)
                if step is not None:
                    steps.append(step)
            if seen is not None and kind in ops.COUNTED:
                seen(node, args, out, kind, operands)
            _bind(node, out, env)
            for name in self._last[i]:
                env.pop(name, None)
        return env[self.program.output]

    def _taint(self, node: Node) -> list[bool]:
        """For each positional argument of `node`, whether it depends on the image (a list argument, such
        as the indices of `index.Tensor`, when any tensor in it does)."""
        return [any(r in self.tainted for r in _refs(a)) for a in node.args]

    def _macs(self, node: Node, args: list, out, kind: str, products) -> int:
        """The MACs of one executed step for its whole batch (the rules: `harness.ops`)."""
        first = out[0] if isinstance(out, (tuple, list)) else out
        if kind == ops.REDUCTION and isinstance(node.args[0], Ref) and node.args[0].name in products \
                and node.op.name.split(".")[1] in ("sum", "mean"):
            return 0  # the product it sums already counted these multiply-accumulates
        if node.op.macs is not None:
            return int(node.op.macs(args, first, self._taint(node) + [False] * 4))
        return int(first.numel())  # pointwise, lookup, norm: one per output element

    def _step(self, node: Node, args: list, out, products: set[str], kind: str, operands: tuple) -> Step | None:
        macs = self._macs(node, args, out, kind, products)
        if macs <= 0:
            return None
        if kind == ops.PRODUCT:
            products.update(_names(node.outputs))
        step = Step(node=node.name, kind=kind, macs=macs, label=node.name)
        for spec in operands:
            ref, value = node.args[spec.pos], args[spec.pos]
            if not isinstance(value, torch.Tensor) or value.numel() <= 1:
                continue
            if isinstance(ref, Ref) and ref.name in self.tainted:
                role = "image" if ref.name in self.image else "activation"
                step.operands.append(Operand(role, value.detach(), spec.act_dim))
            else:
                sources = self.sources.get(ref.name, frozenset()) if isinstance(ref, Ref) else frozenset()
                step.operands.append(Operand("weight", value.detach(), spec.weight_dim, sources))
        named = sorted(self.program.stored[s].fqn for o in step.operands for s in o.sources)
        if named:
            step.label = module_of(named[0])
        return step

    def _round_inputs(self, node: Node, args: list, operands: tuple) -> list:
        out = list(args)
        for spec in operands:
            ref = node.args[spec.pos]
            a = out[spec.pos]
            if isinstance(ref, Ref) and ref.name in self.tainted and isinstance(a, torch.Tensor) \
                    and a.dtype == torch.float32:
                out[spec.pos] = a.half().float()
        return out

    def _resolve(self, value, env):
        if isinstance(value, Ref):
            return env[value.name]
        if value is DEVICE:
            return self.device
        if isinstance(value, (list, tuple)):
            return [self._resolve(v, env) for v in value]
        if isinstance(value, dict):
            return {k: self._resolve(v, env) for k, v in value.items()}
        return value


def _bind(node: Node, out, env: dict) -> None:
    if not node.outputs:
        return
    if len(node.outputs) == 1:
        name = node.outputs[0]
        if isinstance(name, tuple):
            for n, v in zip(name, out, strict=True):
                env[n] = v
        elif name is not None:
            env[name] = out
        return
    for name, value in zip(node.outputs, out, strict=True):
        if isinstance(name, tuple):
            for n, v in zip(name, value, strict=True):
                env[n] = v
        elif name is not None:
            env[name] = value


def _names(outputs: tuple) -> list[str]:
    names = []
    for o in outputs:
        if isinstance(o, tuple):
            names += list(o)
        elif o is not None:
            names.append(o)
    return names


def _refs(*values) -> list[str]:
    found = []
    for v in values:
        if isinstance(v, Ref):
            found.append(v.name)
        elif isinstance(v, (list, tuple)):
            found += _refs(*v)
        elif isinstance(v, dict):
            found += _refs(*v.values())
    return found


_THROUGH = {"aten.view.default", "aten.reshape.default", "aten._unsafe_view.default", "aten.flatten.using_ints",
            "aten.clone.default", "aten.contiguous.default", "aten.pad.default", "aten.constant_pad_nd.default"}
_SUMS = {"aten.add.Tensor", "aten.sub.Tensor"}
_MONOTONE = {"aten.max_pool2d.default"}  # commute with a per-channel affine of positive scale


def _folded(steps: list[Node], tainted: set[str], values: dict) -> set[int]:
    """Batch norms that fold into the convolutions or matrix products whose outputs they alone read:
    directly, or through data movement, sums of such outputs (a skip convolution beside a
    convolution) and max pools (a positive per-channel scale commutes with a maximum)."""
    made_by = {name: n for n in steps for name in _names(n.outputs)}
    readers: dict[str, int] = {}
    for n in steps:
        for r in _refs(n.args, n.kwargs):
            readers[r] = readers.get(r, 0) + 1

    def layers(name: str, depth: int = 0) -> tuple[bool, bool]:
        """(only layer outputs feed `name` linearly, a max pool on the way)."""
        src = made_by.get(name)
        if src is None or readers.get(name) != 1 or depth > 64:
            return False, False
        if src.op.kind in (ops.CONV, ops.MATMUL):
            return True, False
        if src.op.name in _THROUGH or src.op.name in _MONOTONE:
            ok, monotone = layers(src.args[0].name, depth + 1) if isinstance(src.args[0], Ref) else (False, False)
            return ok, monotone or src.op.name in _MONOTONE
        if src.op.name in _SUMS and len(src.args) == 2 and all(isinstance(a, Ref) for a in src.args):
            parts = [layers(a.name, depth + 1) for a in src.args]
            return all(ok for ok, _ in parts), any(m for _, m in parts)
        return False, False

    folded = set()
    for n in steps:
        if n.op.kind != ops.NORM or not isinstance(n.args[0], Ref) \
                or any(isinstance(a, Ref) and a.name in tainted for a in n.args[1:]):
            continue
        ok, monotone = layers(n.args[0].name)
        if ok and (not monotone or _positive_scale(n, values)):
            folded.add(id(n))
    return folded


def _positive_scale(norm: Node, values: dict) -> bool:
    """Whether a batch norm's per-channel scale, weight / sqrt(running_var + eps), is positive."""
    weight = values.get(norm.args[1].name) if isinstance(norm.args[1], Ref) else None
    return weight is None or bool((weight > 0).all())  # the square root of the variance is positive


def _live(program: Program) -> set[int]:
    """Nodes whose results reach the output (walked backwards)."""
    needed, live = {program.output}, set()
    for node in reversed(program.nodes):
        if set(_names(node.outputs)) & needed:  # assertions on metadata return nothing: dropped too
            live.add(id(node))
            needed.update(_refs(node.args, node.kwargs))
    return live


def _read_names(nodes: list[Node]) -> set[str]:
    return {r for n in nodes for r in _refs(n.args, n.kwargs)}


def _keeps_image(node: Node, refs: list[str], image: set[str], tainted: set[str]) -> bool:
    packet = node.op.name.split(".")[1] if node.op.name.startswith("aten.") else ""
    if packet not in _KEEPS_IMAGE:
        return False
    dependent = [r for r in refs if r in tainted]
    if packet in ("add", "sub", "mul", "div", "rsub") and len(dependent) != 1:
        return False
    return all(r in image for r in dependent)


def _last_use(steps: list[Node], output: str) -> list[list[str]]:
    """For each step, the values no later step reads (freed after it, to hold memory as eager code does)."""
    last: dict[str, int] = {}
    for i, node in enumerate(steps):
        for r in _refs(node.args, node.kwargs):
            last[r] = i
        for name in _names(node.outputs):
            last.setdefault(name, i)
    drop: list[list[str]] = [[] for _ in steps]
    for name, i in last.items():
        if name != output:
            drop[i].append(name)
    return drop
