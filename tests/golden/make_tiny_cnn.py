"""Writes tests/golden/tiny-cnn/weights.pt, once: `python tests/golden/make_tiny_cnn.py`.

The weights are fixed and deterministic (torch.manual_seed) and committed; this script only
documents how they were made. After running it, regenerate the golden record
(HARNESS_UPDATE_GOLDEN=1, see tests/test_golden.py) and review its diff.

Signal path: conv1's channel 0 averages the red 3x3 neighbourhood, conv2's channel 0 passes it on
(its centre tap), the spatial maximum gives the grey level L of the brighter half, and fc's column
0 with its bias gives the logits 2 k est - k^2 with est = (255 L - 10) / 25 (tests/conftest.py's
oracle), whose argmax is the class. The other channels are seeded random, about a third of their
weights zero (unstructured pruning), and weigh little in fc; conv2's last output channel is
entirely zero (structured pruning on a layer of few MACs, so that the MAC-share cap binds). Every
value is a float16 value, so that weight_bits: 16 holds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent / "tiny-cnn"


def weights() -> dict[str, torch.Tensor]:
    sys.path.insert(0, str(HERE))
    try:
        from model import build_model
    finally:
        sys.path.remove(str(HERE))
    torch.manual_seed(20240611)
    model = build_model()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def sparse(shape, scale):
        w = torch.randn(shape) * scale
        return w * (torch.rand(shape) > 0.35)

    c1w, c1b = sparse((6, 3, 3, 3), 0.3), sparse((6,), 0.1)
    c1w[0], c1b[0] = 0.0, 0.0
    c1w[0, 0] = 1 / 9  # mean of the red 3x3 neighbourhood
    c2w, c2b = sparse((8, 6, 3, 3), 0.2), sparse((8,), 0.1)
    c2w[0], c2b[0] = 0.0, 0.0
    c2w[0, 0, 1, 1] = 1.0  # passes conv1's channel 0 on
    c2w[7], c2b[7] = 0.0, 0.0  # an entirely zero output channel
    k = torch.arange(10.0)
    fcw = sparse((10, 8), 0.01)
    fcw[:, 0] = 2 * k * 255 / 25
    fcb = -2 * k * 10 / 25 - k**2
    state.update({"conv1.weight": c1w, "conv1.bias": c1b, "conv2.weight": c2w, "conv2.bias": c2b,
                  "fc.weight": fcw, "fc.bias": fcb})
    return {k: v.half().float() for k, v in state.items()}  # float16 values, stored as float32


if __name__ == "__main__":
    torch.save(weights(), HERE / "weights.pt")
    print(f"wrote {HERE / 'weights.pt'}")
