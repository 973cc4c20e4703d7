"""Measure bit widths and zeros of tensors, as a forward pass used them.

Bit-width rule (weights and activations alike), the smallest b that one of these proves:

* codebook: the tensor holds at most 2^b distinct values, counted only where the values
  really repeat (distinct <= numel / 2, and at most half of the distinct values occur only
  once): 27 float32 numbers are 27 distinct values, which proves nothing about 5 bits, and
  a ReLU output is many zeros plus distinct positives, which proves nothing either;
* grid: every channel lies on a uniform grid of at most 2^b levels (per-channel or
  per-tensor integer quantisation, any scale and zero point), the step found as the
  greatest common divisor of the gaps between distinct values. A per-channel grid proves
  something only for channels of at least `MIN_CHANNEL` values: one or two numbers always lie
  on a grid of their own, so a layer cut into one-value channels would read as 1 bit while
  every weight is a free float (its own scale). Smaller channels are judged with the whole
  tensor;
* 16 if every value is exactly a float16;
* else 32.

The caller names the channel dimension (the output channels of a weight, the features of an
activation), or none for a per-tensor judgement only.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MIN_CHANNEL = 8  # values a channel needs for a per-channel grid to count
MAX_GRID_LEVELS = 2**16  # a grid finer than this proves nothing below 16 bits
_GRID_TOL = 1e-3  # how far from a grid point, in steps, a value may lie (float rounding)


def bits(t: torch.Tensor, channel_dim: int | None = 0) -> int:
    """Bits needed to hold `t` under the rule in the module docstring (1..32)."""
    t = t.detach().float()
    flat = t.reshape(-1)
    if flat.numel() == 0:
        return 1
    if not torch.isfinite(flat).all():
        return 32
    values, counts = torch.unique(flat, return_counts=True)
    best = 32
    distinct = values.numel()
    if distinct <= min(MAX_GRID_LEVELS, flat.numel() // 2) and int((counts == 1).sum()) <= distinct // 2:
        best = _ceil_log2(distinct)
    grids = [_grid_levels(values.double().cpu().numpy())]
    per_channel = channel_dim is not None and t.dim() > 1 and t.shape[channel_dim] > 1
    if per_channel and channel_dim is not None and flat.numel() // t.shape[channel_dim] >= MIN_CHANNEL \
            and (grids[0] is None or grids[0] > 2):
        grids.append(_channel_levels(t, channel_dim))  # per-channel scales: each channel on its own grid
    for grid in grids:
        if grid is not None:
            best = min(best, _ceil_log2(grid))
    if best > 16 and torch.equal(flat.half().float(), flat):
        best = 16
    return best


def zeros(weight: torch.Tensor) -> tuple[int, int]:
    """(structured, unstructured) zero elements of a weight [out, ...]: elements of output
    channels that are entirely zero, and the other zero elements."""
    w = weight.detach().reshape(weight.shape[0], -1)
    is_zero = w == 0
    dead = is_zero.all(dim=1)
    structured = int(dead.sum()) * w.shape[1]
    unstructured = int(is_zero[~dead].sum())
    return structured, unstructured


def _channel_levels(t: torch.Tensor, channel_dim: int) -> int | None:
    """Largest per-channel grid size, or None if some channel is on no grid."""
    rows = t.movedim(channel_dim, 0).reshape(t.shape[channel_dim], -1).double().cpu().numpy()
    worst = 1
    for row in rows:
        levels = _grid_levels(np.unique(row))
        if levels is None:
            return None
        worst = max(worst, levels)
    return worst


def _grid_levels(values: np.ndarray) -> int | None:
    """Levels of the coarsest uniform grid holding the sorted distinct `values`, or None.

    Euclid on real numbers: start from the smallest gap and shrink the step until every value
    lies on the grid. Each candidate step is refined by least squares over the grid indices,
    so that the float rounding of scale * integer does not add up across a wide span.
    """
    if values.size <= 1:
        return 1
    offsets = values - values[0]
    span = offsets[-1]
    step = float(np.diff(values).min())
    tol = _GRID_TOL * step  # the finest step Euclid may reach, absolute
    for _ in range(64):
        if step <= tol or span / step >= MAX_GRID_LEVELS:
            return None
        index = np.round(offsets / step)
        refined = float(offsets @ index / (index @ index))
        if np.abs(offsets - index * refined).max() <= _GRID_TOL * refined:
            return int(index[-1]) + 1
        off = np.abs(offsets - index * step)  # Euclid goes on from the unrefined step
        bad = off > _GRID_TOL * step
        if not bad.any():
            return int(index[-1]) + 1
        step = _fgcd(step, float(off[bad][0]), tol)
    return None


def _fgcd(a: float, b: float, tol: float) -> float:
    a, b = max(a, b), min(a, b)
    while b > tol:
        a, b = b, math.fmod(a, b)
    return a


def _ceil_log2(n: int) -> int:
    return max(1, math.ceil(math.log2(max(n, 1))))
