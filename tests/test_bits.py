"""The bit-width rule and zero counting."""

from __future__ import annotations

import torch

from harness.measure.bits import MIN_CHANNEL, bits, zeros

torch.manual_seed(0)
W = torch.randn(64, 3, 3, 3)


def per_channel(w, levels_half):
    s = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True) / levels_half
    return (w / s).round().clamp(-levels_half - 1, levels_half) * s


def test_float32_is_32_even_for_small_tensors():
    assert bits(W) == 32
    assert bits(torch.randn(27)) == 32  # 27 distinct values prove nothing about 5 bits
    assert bits(torch.randn(1, 3, 3, 3)) == 32


def test_float16_values_are_16():
    assert bits(W.half().float()) == 16


def test_integer_grids_per_channel_and_per_tensor():
    assert bits(per_channel(W, 127)) == 8
    assert bits(per_channel(W, 7)) == 4
    s = W.abs().max() / 7
    assert bits((W / s).round().clamp(-8, 7) * s) == 4
    assert bits(torch.sign(W)) == 1


def test_grid_with_offset_and_missing_levels():
    w = 0.37 + 0.013 * torch.tensor([0.0, 3, 7, 250, 255, 12, 99])  # 8-bit grid, few levels used, zero point
    assert bits(w.view(1, -1)) == 8


def test_small_quantised_channels_are_recognised():
    w = per_channel(torch.randn(16, 3, 3, 3), 127)  # 27 values a channel on 255 levels
    assert bits(w) == 8


def test_channels_of_one_or_a_few_values_prove_nothing():
    """One value per channel always lies on a 1-level grid of its own: the layer is float."""
    assert bits(torch.randn(128, 1)) == 32  # F.linear per input feature: 128 channels of one value
    assert bits(torch.randn(64, MIN_CHANNEL - 1)) == 32
    assert bits(per_channel(torch.randn(64, MIN_CHANNEL), 7)) == 4  # from MIN_CHANNEL values on
    assert bits(per_channel(torch.randn(64, 3), 7)) == 32  # small quantised channels: the tensor as a whole
    assert bits(per_channel(torch.randn(64, 12), 7), None) > 4  # per tensor only: one grid for all


def test_one_grid_for_the_whole_tensor_with_a_zero_point():
    taps = 0.6 + 0.0117 * torch.randint(0, 32, (256, 1, 1, 1)).float()  # quant-w5a5-pruned's centre taps
    assert bits(taps) == 5


def test_codebook_of_non_uniform_values():
    book = torch.tensor([-1.3, -0.2, 0.05, 0.9])
    assert bits(book[torch.randint(0, 4, (1000,))].view(100, 10)) == 2


def test_relu_activations_are_not_a_codebook():
    a = torch.relu(torch.randn(16, 32, 4, 4))  # half zeros, the rest distinct
    assert bits(a, 1) == 32


def test_quantised_activations():
    a = torch.relu(torch.randn(16, 32, 8, 8))
    s = a.max() / 15
    assert bits((a / s).round().clamp(0, 15) * s, 1) == 4


def test_non_finite_is_32():
    assert bits(torch.tensor([[1.0, float("nan")], [0.0, 1.0]])) == 32


def test_zeros_split_into_structured_and_unstructured():
    w = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    assert zeros(w) == (2, 2)
    conv = torch.randn(8, 3, 3, 3)
    conv[[1, 5]] = 0
    conv[0, 0, 0, 0] = 0
    assert zeros(conv) == (2 * 27, 1)


def test_wide_sparse_grid_despite_float_rounding():
    # A row of brevitas' 8-bit per-channel whitening conv: float32 rounding of scale * integer
    # shifts the smallest gap by 7e-6 steps, which a plain Euclid multiplies across 184 steps.
    scale = torch.tensor(0.009319474920630455)
    row = torch.tensor([-127.0, -126, 58, 60, 70, -100, 12, 33, 91, -7, 44, 120]) * scale
    assert bits(row.view(1, -1)) == 8
    assert bits(torch.stack([row, 0.5 * row, row.flip(0)])) == 8
    assert bits(row.view(1, -1) + 1e-3 * torch.randn(1, 12)) == 32  # off the grid: no bits proven
