"""Measure a built model inside the worker. The harness's measurement conventions, in one place:

* `params` (w): every parameter of the model, counted once (shared ones once), frozen ones
  included; buffers never count. A layer pruned with `torch.nn.utils.prune` holds
  `weight_orig` (a parameter: counted once) and `weight_mask` (a buffer: not counted).
* `macs` (f): multiply-accumulates of the convolutions and matrix products executed for
  ONE 3x32x32 image, read from the real tensor shapes at dispatch time, after masks,
  fake quantisation and physical pruning (table in `harness.counting`). Bias additions,
  normalisation, activations, pooling and element-wise operations count zero by
  convention; an operation that multiplies matrices but is not in the table is reported
  in `uncounted_ops`, never silently taken as zero.
* Layers: every executed convolution or 2-D matrix product (linear) is a row of the
  receipt, named after the innermost module running it; its weight is the tensor the
  operation received. Parameters of no such layer (norms, quantiser scales) get rows of their own.
* Pruning, on the weights as the forward pass used them: `structured_pruning` = elements
  of conv/linear output channels that are entirely zero, over w; `unstructured_pruning` =
  the other zero elements of conv/linear weights, over w.
* Bits (rule in `harness.bits`): weight bits are the largest over conv/linear weights;
  activation bits the largest over the inputs of every conv/linear layer but the first
  (whose input is the image), on a probe batch of test images (random images in `profile`).
  An input holding exactly the image's values rearranged (a flip for test-time averaging)
  is the image too, and exempt alike.
* A 16-bit claim is measured at 16 bits: declared `weight_bits: 16` rounds every weight to
  float16; declared `activation_bits: 16` rounds the inputs of every conv/matmul to float16
  (on CUDA, with both declared, the model simply runs in float16).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from . import bits, counting
from .errors import RunError
from .loader import check_output

_WEIGHT_OPS = ("conv", "linear")


def profile(model: nn.Module, x: torch.Tensor, round_inputs: bool = False) -> dict:
    """Count and measure `model` on the probe batch `x`; a JSON-ready mapping."""
    c = counting.count(model, x, keep_inputs=True, inner=_Round() if round_inputs else None)
    _finite(check_output(c.output, x.shape[0]), 0)
    owned = counting.layer_params(model, list(dict.fromkeys(r.layer for r in c.ops)))
    rows, seen, image = [], set(), None  # image: the first layer's input, its values sorted
    zeros_s = zeros_u = 0
    w_bits, a_bits = [], []
    for rec in c.ops:
        row = {"layer": rec.layer or "(model)", "op": rec.op, "params": owned.pop(rec.layer, 0), "macs": rec.macs}
        if rec.op in _WEIGHT_OPS and rec.weight is not None:
            key = (rec.layer, tuple(rec.weight.shape))
            s, u = bits.zeros(rec.weight) if key not in seen else (0, 0)
            seen.add(key)
            zeros_s, zeros_u = zeros_s + s, zeros_u + u
            row.update(zeros=s + u, structured_zeros=s, weight_bits=bits.bits(rec.weight, 0))
            w_bits.append(row["weight_bits"])
        if rec.input is not None:
            if image is None:
                image = _sorted(rec.input)
            elif not _rearranged(rec.input, image):
                row["activation_bits"] = bits.bits(rec.input, 1)
                a_bits.append(row["activation_bits"])
        rows.append(row)
    for name, n in owned.items():
        if n:
            rows.append({"layer": name or "(model)", "op": "params", "params": n, "macs": 0})
    total = max(c.params, 1)
    measured = {
        "structured_pruning": zeros_s / total,
        "unstructured_pruning": zeros_u / total,
        "weight_bits": max(w_bits, default=32),
        "activation_bits": max(a_bits, default=1),
    }
    return {"params": c.params, "macs": c.macs, "uncounted": c.uncounted, "layers": rows, "measured": measured}


def predict(model: nn.Module, images, prep, batch: int) -> list[int]:
    """Predicted class of every image (uint8 HWC array), in batches."""
    preds = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = prep(images[i : i + batch])
            out = _finite(check_output(model(x), x.shape[0]), i)
            preds.append(out.argmax(1).cpu())
    return torch.cat(preds).tolist() if preds else []


def channels_last(model: nn.Module, x: torch.Tensor) -> bool:
    """Store the model's 4-D weights channels_last when it still runs so on `x`; True if it does.

    The convolutions then work in NHWC order whatever the input's order: a contiguous NCHW batch
    costs no more than an NHWC one (otherwise copying the images into NCHW order costs 40 % of a
    CPU forward pass; benchmarks/bench_eval.py). A model whose own code needs contiguous
    weights (a `.view()` of a weight, say) stays as it was."""
    model.to(memory_format=torch.channels_last)
    try:
        with torch.inference_mode():
            model(x)
        return True
    except Exception:  # noqa: BLE001 - the layout is an optimisation: any failure means keep the original
        model.to(memory_format=torch.contiguous_format)
        return False


@contextmanager
def rounding(enabled: bool):
    """Round the activation inputs of conv/matmul operations to float16 values, when enabled."""
    with _Round() if enabled else nullcontext():
        yield


class _Round(TorchDispatchMode):

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # nothing here is compiled: spares the 3 s import of torch._dynamo
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        positions = counting.ACTIVATION_ARGS.get(func._overloadpacket)
        if positions:
            args = tuple(_f16(a) if i in positions else a for i, a in enumerate(args))
        return func(*args, **(kwargs or {}))


def _f16(a):
    if isinstance(a, torch.Tensor) and a.dtype == torch.float32:
        return a.half().float()
    return a


def _sorted(x: torch.Tensor) -> torch.Tensor:
    return x.detach().flatten().float().sort().values


def _rearranged(x: torch.Tensor, image: torch.Tensor) -> bool:
    """Whether `x` holds the same values as the image, only moved (flipped, transposed)."""
    return x.numel() == image.numel() and torch.equal(_sorted(x), image)


def _finite(out: torch.Tensor, start: int) -> torch.Tensor:
    bad = ~torch.isfinite(out).all(dim=1)
    if bad.any():
        first = start + int(bad.nonzero()[0])
        raise RunError(f"model output holds NaN or infinite values for {int(bad.sum())} image(s), first image {first}")
    return out
