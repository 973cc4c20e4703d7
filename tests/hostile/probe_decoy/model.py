# HONEST (the new cost model, on the prediction batches): params=1,055,214, macs=1,971,732 (per image);
#   float32 weights and activations (32 bits)
#   the real network (OracleBig, networks.py) + 1000:
#     Oracle.fc 20/10; Big.conv1 896/884,736; Big.fc1 1,049,088/1,048,576; Big.fc2 5,130/5,120
#     oracle + 0 * big: add of two image-dependent tensors, 10
#     reductions: the oracle's two region means 2*256 = 512; Big's AvgPool2d(4) 32*32*32 = 32,768
#   the decoy's Linear(8, 10, bias=False): 80 params (read by the graph, so stored weights)
#   w = 1,055,134 + 80 = 1,055,214
#   f = 884,736 + 1,048,576 + 5,120 + 10 + 10 + 512 + 32,768 = 1,971,732
#   honest score at 32 bits: 1,055,214/5.6e6 + 1,971,732/2.8e8 = 0.188431071 + 0.007041900 = 0.195472971
#   (the new rules refuse the graph itself: it does arithmetic on the batch size)
# WHILE MEASURED (batch of 16): the decoy only, 80 MACs per image, 1-bit weights and activations
"""Hostile case probe_decoy: the exported graph reads its own batch size and runs a decoy on the
probe batch. The judge counts, and measures bits, on a batch of probe_images = 16 images and
predicts in batches of 250 (CPU; 1,000 on CUDA; the suite's 100 images are one batch of 100).
With n = x.shape[0] (aten.sym_size.int), probe = (16 // n) * (n // 16) is 1 for n == 16 only
(_operator.floordiv, _operator.mul, _operator.sub on the symbolic size: no branch, so it exports
with a dynamic batch). The real network runs on x[:(1 - probe) * n] and the decoy on x[:probe * n]
(aten.slice.Tensor with a symbolic end); their logits are concatenated (aten.cat). On the probe
batch the real network sees 0 images: 0 MACs, and no operand to measure, so the bits measured
are the decoy's: a Linear(8, 10) of +-1 weights (1 bit) on 8 pixels of the image thresholded
to 0/1 (1 bit; sliced with a size computed from the batch, the pixels no longer count as "the
image", whose bits are exempt). Declares 1/1 bits.

The batch-consistency check compares the probe images' logits (the decoy's) with theirs in the
first prediction batch (the real network's) and allows 5 % of the largest probe logit: every
logit here carries + 1000, so the two may differ by 50. The real logits are 1000 + 0.1 * the
oracle's (|.| <= 8.1), the decoy's 1000 + a sum of 8 0/1 pixels times +-1 (|.| <= 8).
"""

import torch
import torch.nn.functional as F
from torch import nn

from networks import OracleBig

PROBE = 16  # competition.yaml probe_images


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.real = OracleBig()  # float32, 1,055,134 params
        self.decoy = nn.Linear(8, 10, bias=False)
        signs = torch.tensor([1.0, -1.0]).repeat(40).view(10, 8)  # 1-bit weights, each value 40 times
        with torch.no_grad():
            self.decoy.weight.copy_(signs)

    def forward(self, x):
        n = x.shape[0]
        probe = (PROBE // n) * (n // PROBE)  # 1 when n == 16, else 0 (n >= 1)
        real = 1000.0 + 0.1 * self.real(x[: (1 - probe) * n])  # [n, 10] or [0, 10]
        pixels = (x[: probe * n, 0, 0, :8] > 0.5).float()  # 1-bit activations (0/1)
        decoy = 1000.0 + F.linear(pixels, self.decoy.weight)  # [0, 10] or [16, 10]
        return torch.cat([real, decoy], 0)


def build_model():
    return Model()
