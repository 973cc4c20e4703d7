"""The counting table: every operator a graph may use, with its cost rule and its measured operands.

The cost model, in one place (fvcore-like: one table from operator to a pure counting function).
Cost follows the data, not operator names: an operator that fits no rule below is refused before
anything runs (the submission is not eligible, and the message names it).

* `w` is every stored number the prediction depends on: parameters, buffers, lifted constants,
  quantiser constants, normalisation statistics, and the numbers written into the graph itself
  (`harness.measure.literals`: every distinct literal value an operator takes as a number, beyond
  `LITERAL_ALLOWANCE`, such as an epsilon). One exemption, the usual convention: a batch norm
  whose input is the output of a convolution or matrix product (and nothing else reads it) folds
  into that layer and counts one number per channel, as its bias. A storage shared by several
  tensors counts once. A weight operand counts at least its own elements unless the stored
  tensors it is prepared from already count as many (a weight expanded from one number counts
  every element it multiplies with).
* `f` counts multiply-accumulates per image on image-dependent data, however they are written:
    conv          convolution: N * prod(weight.shape) * prod(output spatial) (input spatial if transposed)
    matmul        mm / addmm: n * k * m; bmm / baddbmm: b * n * k * m; mv / addmv: n * k; dot: k
    attention     fused attention kernels: B * H * L * S * (E + Ev)
    product       a pointwise operator combining an image-dependent tensor with a stored or prepared
                  tensor of more than one element (mul, div, add, sub, where, maximum, minimum,
                  comparisons, ...): one per output element, that operand measured as a weight;
                  mul / div of two image-dependent tensors likewise, both measured as activations;
                  a lookup of a stored table by image-dependent indices (index, gather, embedding,
                  index_select): one per output element, the table measured as a weight;
                  a batch norm that does not fold: one per output element
    accumulate    any other pointwise operator of two or more image-dependent tensors (residual
                  additions, sums of shifted copies, a maximum or a comparison of two maps): one per
                  output element; a selection between them (where, masked_fill) moves data, free
    reduction     a reduction of image-dependent data, whichever operator does it (sum, mean, every
                  pooling, softmax, variance, max / min / arg, layer and group norms): one per
                  input element, except a sum or mean of a counted product (already counted);
                  bilinear interpolation: four per output element
  Free: pure data movement (views, permutes, slices by constants, cat, pad, flip, nearest
  upsampling, selection of image data by constant indices) and pointwise functions of image data
  with scalar constants (ReLU, clamp, round, scaling by a scalar). Operations on stored tensors
  alone (fake-quantising a weight, say) are weight preparation: they run once, count zero, and
  their result is what the counted operations use as weights.
* Bits are measured on the operands of every counted operation: an operand that depends on the
  image is an activation, one that does not is a weight. Each operand's output-channel dimension
  (for per-channel grids and structured zeros) is listed.
* The batch size may appear in a graph only as the size of dimension 0 (`harness.measure.shapes`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from math import prod
from typing import Callable

import torch

aten = torch.ops.aten
CONV, MATMUL, ATTENTION, PRODUCT, ACCUMULATE, REDUCTION, FREE = (
    "conv", "matmul", "attention", "product", "accumulate", "reduction", "free")
# How an operator is judged; the kind of a step it runs as is one of the kinds above.
POINTWISE, LOOKUP, NORM = "pointwise", "lookup", "norm"
COUNTED = (CONV, MATMUL, ATTENTION, PRODUCT)  # kinds whose operands are bit-measured
LITERAL_ALLOWANCE = 16  # distinct literal numbers a graph may hold for free (epsilons, 0.5, 255, ...)


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
    kind: str = FREE  # conv, matmul, attention, reduction, pointwise, lookup, norm, free
    macs: Callable | None = None  # (args, out, tainted args) -> MACs of the whole batch
    operands: tuple[Operand, ...] = ()
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


def _input(a, out, t):
    """A reduction: one accumulate per element of its image-dependent input."""
    return a[0].numel() if t[0] and isinstance(a[0], torch.Tensor) else 0


def _bilinear(a, out, t):
    return 4 * out.numel() if t[0] else 0


def _layer_norm(a, out, t):
    """Statistics over every input element, then one scale per output element when affine."""
    first = out[0] if isinstance(out, (tuple, list)) else out
    affine = any(isinstance(w, torch.Tensor) for w in a[2:4]) if len(a) > 2 else False
    return (a[0].numel() + (first.numel() if affine else 0)) if t[0] else 0


_MM = (Operand(0, 0, 1), Operand(1, 1, 0))
_ADDMM = (Operand(1, 0, 1), Operand(2, 1, 0))
_BMM = (Operand(0, 1, 2), Operand(1, 2, 1))
_BADDBMM = (Operand(1, 1, 2), Operand(2, 2, 1))
_PAIR = (Operand(0, None, None), Operand(1, None, None))
_NORM = (Operand(1, 0, None), Operand(2, 0, None), Operand(3, 0, None), Operand(4, 0, None))

# (operator, kind, counting function, operands). Pointwise, lookup and norm operators are judged by
# the data their arguments carry (harness.measure.graph): their operands are all tensor arguments.
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
    ("batch_norm.default", NORM, None, _NORM),  # export's own IR
    ("_native_batch_norm_legit_no_training.default", NORM, None, _NORM),
    ("native_layer_norm.default", REDUCTION, _layer_norm, (Operand(2, None, None), Operand(3, None, None))),
    ("native_group_norm.default", REDUCTION, _layer_norm, (Operand(1, None, None), Operand(2, None, None))),
    ("upsample_bilinear2d.vec", REDUCTION, _bilinear, ()),
]
# Pointwise operators: free on image data alone or with scalars; with a stored or prepared tensor
# of more than one element a product; of two image-dependent tensors an accumulate (or a product).
_POINTWISE = """
add.Tensor sub.Tensor rsub.Tensor mul.Tensor div.Tensor div.Tensor_mode where.self where.ScalarSelf
where.ScalarOther where.Scalar maximum minimum clamp.Tensor clamp_min.Tensor clamp_max.Tensor eq.Tensor
ne.Tensor lt.Tensor le.Tensor gt.Tensor ge.Tensor pow.Tensor_Tensor remainder.Tensor fmod.Tensor
masked_fill.Scalar masked_fill.Tensor logical_and logical_or logical_xor bitwise_and.Tensor
bitwise_or.Tensor abs neg exp exp2 expm1 log log2 log1p sqrt rsqrt reciprocal sigmoid tanh relu gelu silu
hardtanh hardswish hardsigmoid leaky_relu elu softplus mish clamp.default clamp_min.default clamp_max.default
round.default round.decimals floor ceil trunc sign sgn erf sin cos logical_not bitwise_not isnan isinf
eq.Scalar ne.Scalar lt.Scalar le.Scalar gt.Scalar ge.Scalar add.Scalar sub.Scalar mul.Scalar div.Scalar
rsub.Scalar pow.Tensor_Scalar pow.Scalar remainder.Scalar fmod.Scalar _to_copy to.dtype clone alias detach
lift_fresh_copy contiguous
""".split()
# Pointwise selections: choosing, element by element, between image-dependent values (the condition
# an image-dependent comparison, which counts) moves data; with a stored tensor it is a product.
SELECTIONS = ("where", "masked_fill")
# Lookups: selection by indices; a product when a stored table is read at image-dependent indices.
_LOOKUP = ["index.Tensor", "gather.default", "index_select.default", "embedding.default"]  # the table: argument 0
# Reductions: one accumulate per element of the image-dependent input.
_REDUCTION = """
sum.dim_IntList sum.default mean.dim mean.default amax amin max.dim min.dim max.default min.default argmax
argmin any.dim any.dims any.default all.dim var.correction var_mean.correction _softmax _log_softmax
max_pool2d_with_indices max_pool2d avg_pool2d _adaptive_avg_pool2d adaptive_max_pool2d
""".split()
# Free: data movement and creation (the numbers a creation writes are literals, counted in w).
_FREE = """
view _unsafe_view reshape permute expand unfold unsqueeze squeeze.dim squeeze.dims squeeze.default select.int
slice.Tensor flip cat stack constant_pad_nd split.Tensor split_with_sizes unbind.int roll repeat t
transpose.int scalar_tensor full full_like zeros zeros_like ones ones_like arange.default arange.start
arange.start_step fill.Scalar upsample_nearest2d.vec sym_size.int sym_numel sym_stride.int sym_storage_offset
_assert_tensor_metadata _assert_scalar sym_constrain_range_for_size _assert_async.msg flatten.using_ints
pad.default type_as
""".split()
_CHECKS = {"batch_norm.default": _inference_only}
_PYTHON: dict[str, Callable] = {
    "getitem": operator.getitem, "add": operator.add, "sub": operator.sub, "mul": operator.mul,
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
        table[name] = Op(name, _overload(short), kind, fn, operands, _CHECKS.get(short))
    for group, kind, fn in ((_POINTWISE, POINTWISE, None), (_REDUCTION, REDUCTION, _input), (_FREE, FREE, None),
                            (_LOOKUP, LOOKUP, None)):
        for short in group:
            for overload in _overloads(short):
                name = f"aten.{overload}"
                table.setdefault(name, Op(name, _overload(overload), kind, fn))
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


def typed_args(op: Op, args: tuple, kwargs: dict) -> list[tuple[str, object]]:
    """Each argument of a call with the type its operator's schema declares for it ("" where the
    schema says nothing: an operator of Python, an argument beyond the schema): positional ones in
    order, then keyword ones by name. Types read as torch writes them, e.g. "List[int]" for sizes."""
    schema = getattr(op.fn, "_schema", None)
    declared = list(schema.arguments) if schema is not None else []
    named = {a.name: str(a.type) for a in declared}
    out = [(str(declared[i].type) if i < len(declared) else "", v) for i, v in enumerate(args)]
    return out + [(named.get(k, ""), v) for k, v in kwargs.items()]


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
            + "; ".join(shown) + more + ". The operators accepted are listed in harness/ops.py")
