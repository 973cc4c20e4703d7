"""The counting table: every operator a graph may use, with its MAC rule and its measured operands.

The conventions, in one place (fvcore-like: one table from operator to a pure counting function):

* A graph may use only the operators below: core ATen, and the few operators of export's own IR
  listed with them (conv2d, linear, batch_norm, ...), so that a graph made only of these needs no
  decomposition (`harness.build.export`). Anything
  else (FFT, custom or quantized operators, control flow, random numbers, in-place updates)
  is refused before anything runs: the submission is not eligible, and the message names it.
* `f` counts multiply-accumulates per image, however they are written:
    conv          convolution: N * prod(weight.shape) * prod(output spatial) (input spatial if transposed)
    matmul        mm / addmm: n * k * m; bmm / baddbmm: b * n * k * m; mv / addmv: n * k; dot: k
    attention     fused attention kernels: B * H * L * S * (E + Ev)
    product       mul / div of an image-dependent tensor by a tensor of more than one element:
                  one per output element (a convolution written as unfold * weight, a depthwise
                  product, a gate); by a single number: zero
    accumulate    add / sub of two image-dependent tensors: one per output element (residuals,
                  sums of shifted copies)
    reduction     sum / mean of an image-dependent tensor: one per input element, unless that
                  input is a counted product (whose multiply-accumulates are already counted)
  Normalisation, activations, pooling, comparisons and data movement count zero ("free").
  Operations on stored tensors alone (fake-quantising a weight, say) are weight preparation:
  they run once, count zero, and their result is what the counted operations use as weights.
* Bits are measured on the operands of every counted matrix, attention and product operation:
  an operand that depends on the image is an activation, one that does not is a weight. Each
  operand's output-channel dimension (for per-channel grids and structured zeros) is listed.
* Normalisation running statistics (`stats` positions) do not count in `w`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from math import prod
from typing import Callable

import torch

aten = torch.ops.aten
CONV, MATMUL, ATTENTION, PRODUCT, ACCUMULATE, REDUCTION, FREE = (
    "conv", "matmul", "attention", "product", "accumulate", "reduction", "free")
COUNTED = (CONV, MATMUL, ATTENTION, PRODUCT)  # kinds whose operands are bit-measured


@dataclass(frozen=True)
class Operand:
    """A multiplied argument: its position, and its output-channel dimension as a weight / as an activation."""

    pos: int
    weight_dim: int | None
    act_dim: int | None


@dataclass(frozen=True)
class Op:
    name: str  # as the exported graph names it, e.g. aten.convolution.default
    fn: Callable
    kind: str = FREE
    macs: Callable | None = None  # (args, out, tainted args) -> MACs of the whole batch
    operands: tuple[Operand, ...] = ()
    stats: tuple[int, ...] = field(default=())  # positions of normalisation running statistics
    check: Callable | None = None  # (args, kwargs) -> why this call is refused, or None


def _conv(a, out, t):
    x, w = a[0], a[1]
    transposed = bool(a[6]) if len(a) > 6 else False
    return x.shape[0] * prod(w.shape) * prod((x if transposed else out).shape[2:])


def _conv2d(a, out, t):
    return a[0].shape[0] * prod(a[1].shape) * prod(out.shape[2:])  # conv2d(input, weight, bias, ..., groups)


def _linear(a, out, t):
    return prod(a[0].shape[:-1]) * a[1].shape[0] * a[1].shape[1]


def _inference_only(args, kwargs):
    training = args[5] if len(args) > 5 else kwargs.get("training", False)
    return "batch_norm in training mode (batch statistics, running statistics updated)" if training else None


def _mm(i):
    return lambda a, out, t: a[i].shape[0] * a[i].shape[1] * a[i + 1].shape[1]


def _bmm(i):
    return lambda a, out, t: a[i].shape[0] * a[i].shape[1] * a[i].shape[2] * a[i + 1].shape[2]


def _mv(i):
    return lambda a, out, t: a[i].shape[0] * a[i].shape[1]


def _dot(a, out, t):
    return a[0].shape[0]


def _attention(a, out, t):
    q, k, v = a[0], a[1], a[2]
    return prod(q.shape[:-2]) * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])


def _product(a, out, t):
    """One MAC per output element when an image-dependent tensor is multiplied by more than one number."""
    x, y = a[0], a[1]
    if not (t[0] or t[1]):
        return 0
    other = y if t[0] else x
    many = isinstance(other, torch.Tensor) and other.numel() > 1
    return out.numel() if many else 0


def _accumulate(a, out, t):
    return out.numel() if t[0] and t[1] and isinstance(a[1], torch.Tensor) else 0


def _reduction(a, out, t):
    return a[0].numel() if t[0] else 0


_MM = (Operand(0, 0, 1), Operand(1, 1, 0))
_ADDMM = (Operand(1, 0, 1), Operand(2, 1, 0))
_BMM = (Operand(0, 1, 2), Operand(1, 2, 1))
_BADDBMM = (Operand(1, 1, 2), Operand(2, 2, 1))
_PAIR = (Operand(0, None, None), Operand(1, None, None))

_COUNTED = [
    ("convolution.default", CONV, _conv, (Operand(0, None, 1), Operand(1, 0, None))),
    ("conv2d.default", CONV, _conv2d, (Operand(0, None, 1), Operand(1, 0, None))),  # export's own IR
    ("conv2d.padding", CONV, _conv2d, (Operand(0, None, 1), Operand(1, 0, None))),
    ("linear.default", MATMUL, _linear, (Operand(0, None, -1), Operand(1, 0, None))),
    ("mm.default", MATMUL, _mm(0), _MM),
    ("addmm.default", MATMUL, _mm(1), _ADDMM),
    ("bmm.default", MATMUL, _bmm(0), _BMM),
    ("baddbmm.default", MATMUL, _bmm(1), _BADDBMM),
    ("mv.default", MATMUL, _mv(0), _PAIR),
    ("addmv.default", MATMUL, _mv(1), (Operand(1, None, None), Operand(2, None, None))),
    ("dot.default", MATMUL, _dot, _PAIR),
    ("_scaled_dot_product_flash_attention_for_cpu.default", ATTENTION, _attention,
     (Operand(0, None, None), Operand(1, None, None), Operand(2, None, None))),
    ("mul.Tensor", PRODUCT, _product, _PAIR),
    ("div.Tensor", PRODUCT, _product, _PAIR),
    ("div.Tensor_mode", PRODUCT, _product, _PAIR),
    ("add.Tensor", ACCUMULATE, _accumulate, ()),
    ("sub.Tensor", ACCUMULATE, _accumulate, ()),
    ("sum.dim_IntList", REDUCTION, _reduction, ()),
    ("sum.default", REDUCTION, _reduction, ()),
    ("mean.dim", REDUCTION, _reduction, ()),
    ("mean.default", REDUCTION, _reduction, ()),
]
# Zero MACs by convention: data movement, creation, activations, comparisons, pooling, normalisation.
_FREE = """
view _unsafe_view reshape permute expand unfold unsqueeze squeeze.dim squeeze.dims squeeze.default select.int
slice.Tensor clone alias _to_copy flip cat stack constant_pad_nd split.Tensor split_with_sizes unbind.int
detach lift_fresh_copy roll repeat index.Tensor index_select gather embedding t transpose.int contiguous
scalar_tensor full full_like zeros zeros_like ones ones_like arange.default arange.start arange.start_step
fill.Scalar abs neg exp exp2 expm1 log log2 log1p sqrt rsqrt reciprocal sigmoid tanh relu gelu silu hardtanh
hardswish hardsigmoid leaky_relu elu softplus mish clamp.default clamp.Tensor clamp_min.default
clamp_max.default round.default round.decimals floor ceil trunc sign sgn erf sin cos logical_not logical_and
logical_or logical_xor bitwise_not bitwise_and bitwise_or where.self eq.Scalar eq.Tensor ne.Scalar ne.Tensor
lt.Scalar lt.Tensor le.Scalar le.Tensor gt.Scalar gt.Tensor ge.Scalar ge.Tensor isnan isinf masked_fill.Scalar
add.Scalar sub.Scalar mul.Scalar div.Scalar rsub.Scalar pow.Tensor_Scalar pow.Scalar maximum minimum
remainder.Scalar fmod.Scalar amax amin max.dim min.dim max.default min.default argmax argmin any.dim any.dims
any.default all.dim var.correction var_mean.correction _softmax _log_softmax max_pool2d_with_indices
max_pool2d avg_pool2d _adaptive_avg_pool2d adaptive_max_pool2d upsample_nearest2d.vec
upsample_bilinear2d.vec _native_batch_norm_legit_no_training native_layer_norm native_group_norm
sym_size.int sym_numel sym_stride.int sym_storage_offset _assert_tensor_metadata _assert_scalar
sym_constrain_range_for_size _assert_async.msg
flatten.using_ints to.dtype type_as where.Scalar pad.default batch_norm
""".split()
_STATS = {"_native_batch_norm_legit_no_training.default": (3, 4), "batch_norm.default": (3, 4)}
_CHECKS = {"batch_norm.default": _inference_only}
_PYTHON = {"getitem": operator.getitem, "add": operator.add, "sub": operator.sub, "mul": operator.mul,
           "floordiv": operator.floordiv, "truediv": operator.truediv, "neg": operator.neg, "mod": operator.mod,
           "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
           "ge": operator.ge}
_HINTS = [("fft", "FFT has no multiply-accumulate rule; write the convolution as a convolution"),
          ("quantized", "torch.ao quantized operators are not accepted; submit fake quantisation instead "
                        "(quantisation-aware training or brevitas), see submissions/README.md"),
          ("higher_order", "data-dependent control flow (torch.cond, loops) is not accepted"),
          ("rand", "random numbers are not accepted at inference"), ("bernoulli", "random numbers are not accepted"),
          ("empty", "uninitialised memory is not accepted"), ("_", "")]


def _table() -> dict[str, Op]:
    table = {}
    for short, kind, fn, operands in _COUNTED:
        name = f"aten.{short}"
        table[name] = Op(name, _overload(short), kind, fn, operands)
    for short in _FREE:
        for overload in _overloads(short):
            name = f"aten.{overload}"
            table.setdefault(name, Op(name, _overload(overload), FREE, None, (), _STATS.get(overload, ()),
                                      _CHECKS.get(overload)))
    for short, fn in _PYTHON.items():
        table[f"_operator.{short}"] = Op(f"_operator.{short}", fn)
    return table


def _overloads(short: str) -> list[str]:
    if "." in short:
        return [short]
    packet = getattr(aten, short, None)
    if packet is None:
        return []
    return [f"{short}.{o}" for o in packet.overloads() if "out" not in o]  # no out= variants: they write in place


def _overload(short: str):
    packet, _, overload = short.partition(".")
    return getattr(getattr(aten, packet), overload or "default")


TABLE = _table()


def lookup(target: str) -> Op | None:
    """The table entry for a graph's operator name (`torch.ops.aten.mm.default`, `_operator.getitem`)."""
    name = target[len("torch.ops."):] if target.startswith("torch.ops.aten.") else target
    return TABLE.get(name)


def refusal(names: list[str]) -> str:
    """Why a graph with these operators is refused, with a hint for the ones we know."""
    shown = []
    for name in names[:10]:
        hint = next((h for key, h in _HINTS if key in name.lower()), "")
        shown.append(f"{name} ({hint})" if hint else name)
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return ("the graph uses operators the judge has no counting rule for, so it cannot count or check them: "
            + "; ".join(shown) + more + ". The operators accepted are listed in harness/measure/ops.py")
