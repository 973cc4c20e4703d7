"""Count weights and multiply-accumulates from the operations a model really executes.

A dispatch mode sees every aten operation with its real tensors; a small table maps each
counted operator to a pure counting function (MACs for the batch; `count` divides by N).
The conventions (what counts, what is zero, what is reported) are in `harness.measure`:

    convolution          N * prod(weight.shape) * prod(output spatial)   (groups are in weight.shape[1])
    linear, mm / addmm   rows * in * out
    bmm / baddbmm        B * n * k * m
    mv / addmv, dot      rows * cols, len
    scaled dot-product attention  B * H * L * S * (E + Ev)

Any other operator whose name says it multiplies (conv, mm, matmul, attention, einsum,
rnn, fft, ...) lands in `Count.uncounted`.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from math import prod
from typing import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


@dataclass
class OpRecord:
    """One executed counted operation."""

    layer: str  # module name ("" for the model itself)
    op: str  # conv / linear / matmul / attention ...
    macs: int
    weight: torch.Tensor | None = None  # [out, ...] as the operation used it
    input: torch.Tensor | None = None  # the activation it received


@dataclass
class Count:
    """What one forward pass executed."""

    params: int
    macs: int
    ops: list[OpRecord] = field(default_factory=list)
    uncounted: list[str] = field(default_factory=list)
    output: object = None  # what the model returned


def count(model: nn.Module, x: torch.Tensor, keep_inputs: bool = False, inner=None) -> Count:
    """Run `model(x)` once and count its parameters and its per-image MACs (x has N images).

    `inner` is an optional context (another dispatch mode) entered inside the counter, so
    that the counter sees what it does to the operations' arguments."""
    names = {m: n for n, m in model.named_modules()}
    with _Counter(names, keep_inputs) as counter, (inner or nullcontext()), torch.no_grad():
        output = model(x)
    n = x.shape[0]
    for rec in counter.ops:
        rec.macs //= n
    return Count(
        params=count_params(model),
        macs=sum(r.macs for r in counter.ops),
        ops=counter.ops,
        uncounted=sorted(counter.uncounted),
        output=output,
    )


def count_params(model: nn.Module) -> int:
    """Every parameter counted once, frozen ones included."""
    return sum(p.numel() for p in model.parameters())


def layer_params(model: nn.Module, layers: list[str]) -> dict[str, int]:
    """Share the model's parameters out: each to the first listed layer that owns it, the
    rest to the module holding them directly. Sums to `count_params(model)`."""
    owner: dict[int, str] = {}
    modules = dict(model.named_modules())
    for layer in layers:
        for p in modules[layer].parameters():
            owner.setdefault(id(p), layer)
    for name, module in model.named_modules():
        for p in module.parameters(recurse=False):
            owner.setdefault(id(p), _QUANTISER.split(name)[0])  # a quantiser's scale belongs to its layer
    sizes = {id(p): p.numel() for p in model.parameters()}
    out: dict[str, int] = {}
    for key, layer in owner.items():
        if key in sizes:
            out[layer] = out.get(layer, 0) + sizes.pop(key)
    return out


def _conv(args, out) -> tuple[int, torch.Tensor, torch.Tensor]:
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    spatial = x.shape[2:] if transposed else out.shape[2:]
    weight = w.transpose(0, 1) if transposed else w
    return x.shape[0] * prod(w.shape) * prod(spatial), weight, x


def _convnd(args, out):
    x, w = args[0], args[1]
    return x.shape[0] * prod(w.shape) * prod(out.shape[2:]), w, x


def _linear(args, out):
    x, w = args[0], args[1]
    rows = prod(x.shape[:-1])
    return rows * w.shape[0] * w.shape[1], w, x


def _addmm(args, out):
    x, w = args[1], args[2]
    return x.shape[0] * x.shape[1] * w.shape[1], w.t(), x


def _mm(args, out):
    x, w = args[0], args[1]
    return x.shape[0] * x.shape[1] * w.shape[1], w.t(), x


def _bmm(args, out):
    a, b = args[-2], args[-1]
    if len(args) == 3:  # baddbmm(input, a, b)
        a, b = args[1], args[2]
    return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2], None, None


def _mv(args, out):
    m = args[1] if len(args) == 3 else args[0]
    return m.shape[0] * m.shape[1], None, None


def _dot(args, out):
    return args[0].shape[0], None, None


def _attention(args, out):
    q, k, v = args[0], args[1], args[2]
    batch = prod(q.shape[:-2])
    return batch * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1]), None, None


_QUANTISER = re.compile(r"\.\w+_quant(?:\.|$)")  # brevitas: layer.act_quant.fused_..., layer.weight_quant...

# operator -> (kind, counting function returning (macs, weight or None, input or None))
_TABLE: dict[object, tuple[str, Callable]] = {
    aten.convolution: ("conv", _conv),
    aten._convolution: ("conv", _conv),
    aten.conv1d: ("conv", _convnd),
    aten.conv2d: ("conv", _convnd),
    aten.conv3d: ("conv", _convnd),
    aten.linear: ("linear", _linear),
    aten.addmm: ("linear", _addmm),
    aten.mm: ("linear", _mm),
    aten.bmm: ("matmul", _bmm),
    aten.baddbmm: ("matmul", _bmm),
    aten.mv: ("matmul", _mv),
    aten.addmv: ("matmul", _mv),
    aten.dot: ("matmul", _dot),
    aten._scaled_dot_product_flash_attention_for_cpu: ("attention", _attention),
    aten._scaled_dot_product_flash_attention: ("attention", _attention),
    aten._scaled_dot_product_efficient_attention: ("attention", _attention),
    aten._scaled_dot_product_cudnn_attention: ("attention", _attention),
}
# operator -> positions of its activation arguments (rounded to float16 for 16-bit claims)
ACTIVATION_ARGS: dict[object, tuple[int, ...]] = {
    aten.convolution: (0,), aten._convolution: (0,), aten.conv1d: (0,), aten.conv2d: (0,), aten.conv3d: (0,),
    aten.linear: (0,), aten.addmm: (1,), aten.mm: (0,),
    aten.bmm: (0, 1), aten.baddbmm: (1, 2), aten.mv: (1,), aten.addmv: (2,), aten.dot: (0, 1),
}
_SUSPECT = re.compile(
    r"conv|^_?\w*mm$|^_?\w*mm_|matmul|^v?dot$|attention|einsum|^linear|lstm|^gru|rnn|fft|tensordot|cdist|^addr$|^ger$|bilinear"
)


class _Counter(TorchDispatchMode):
    """Dispatch mode that records counted operations under the innermost running module."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # nothing here is compiled: spares the 3 s import of torch._dynamo

    def __init__(self, names: dict[nn.Module, str], keep_inputs: bool):
        super().__init__()
        self.names, self.keep_inputs = names, keep_inputs
        self.stack: list[str] = [""]
        self.ops: list[OpRecord] = []
        self.uncounted: set[str] = set()
        self.handles: list = []

    def __enter__(self):
        self.handles = [
            nn.modules.module.register_module_forward_pre_hook(self._push),
            nn.modules.module.register_module_forward_hook(self._pop),
        ]
        return super().__enter__()

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        return super().__exit__(*exc)

    def _push(self, module, args):
        if module in self.names:
            self.stack.append(self.names[module])

    def _pop(self, module, args, out):
        if module in self.names and len(self.stack) > 1:
            self.stack.pop()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        packet = func._overloadpacket
        entry = _TABLE.get(packet)
        if entry is not None:
            kind, fn = entry
            first = out[0] if isinstance(out, (tuple, list)) else out
            macs, weight, x = fn(args, first)
            self.ops.append(
                OpRecord(
                    layer=self.stack[-1],
                    op=kind,
                    macs=int(macs),
                    weight=None if weight is None else weight.detach().clone(),
                    input=None if (x is None or not self.keep_inputs) else x.detach().clone(),
                )
            )
        elif _SUSPECT.search(packet.__name__):
            self.uncounted.add(packet.__name__)
        return out
