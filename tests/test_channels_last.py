"""Stage 2's channels_last lever keeps results unchanged, and falls back when the graph will not run so."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.measure import archive, graph

from .conftest import exported


def _graph(model, tmp_path) -> graph.Graph:
    return graph.Graph(archive.read(exported(model, tmp_path)), torch.device("cpu"))


def test_channels_last_keeps_outputs(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 10, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    g = _graph(model, tmp_path)
    x = torch.randn(4, 3, 32, 32)
    with torch.inference_mode():
        before = g.run(x)
        assert g.channels_last(x[:2])
        weights = [v for v in g.values.values() if isinstance(v, torch.Tensor) and v.dim() == 4]
        assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
        torch.testing.assert_close(g.run(x), before, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.eval()(x), before, rtol=1e-5, atol=1e-5)  # the graph is the model


def test_channels_last_falls_back_when_the_graph_fails_with_it(tmp_path, monkeypatch):
    g = _graph(nn.Sequential(nn.Conv2d(3, 10, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()), tmp_path)
    run = g.run

    def picky(x):
        if any(isinstance(v, torch.Tensor) and v.dim() == 4 and not v.is_contiguous() for v in g.values.values()):
            raise RuntimeError("view size is not compatible with input tensor's size and stride")
        return run(x)

    monkeypatch.setattr(g, "run", picky)
    x = torch.randn(2, 3, 32, 32)
    assert not g.channels_last(x)
    assert all(v.is_contiguous() for v in g.values.values() if isinstance(v, torch.Tensor))
    assert g.run(x).shape == (2, 10)


def test_the_output_must_depend_on_the_image(tmp_path):
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.logits = nn.Parameter(torch.randn(1, 10))

        def forward(self, x):
            return self.logits.expand(4, 10) + 0 * self.logits  # the batch of the example, no image

    from harness.errors import RunError

    with pytest.raises(RunError, match="does not depend on its input image"):
        _graph(Constant(), tmp_path)
