"""The worker's channels_last lever keeps results unchanged, and falls back for models that need
contiguous weights."""

from __future__ import annotations

import torch
from torch import nn

from harness import measure


class Flat(nn.Module):
    """A model whose own code views its weight as a matrix: fails with channels_last weights."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        w = self.conv.weight.view(4, -1)
        return nn.functional.conv2d(x, w.view_as(self.conv.weight)).mean((2, 3)).repeat(1, 3)[:, :10]


def test_channels_last_keeps_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 10, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.randn(4, 3, 32, 32)
    with torch.inference_mode():
        before = model(x)
    assert measure.channels_last(model, x[:2])
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)


def test_channels_last_falls_back_when_the_model_needs_contiguous_weights():
    model = Flat()
    x = torch.randn(2, 3, 32, 32)
    assert not measure.channels_last(model, x)
    assert model.conv.weight.is_contiguous()
    assert model(x).shape == (2, 10)

