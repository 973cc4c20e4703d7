# HONEST (the new cost model, on this graph): params=356, macs=585,845 (per image); the weights are
#   float32 (32 bits), though 4/4 bits are declared
#   a 3x3 convolution 3->12, stride 2, no padding (15x15 = 225 positions) on the image quantised to
#   4 bits, as bit planes: x W = sum_i 2^i bit_i(x) W, each bit_i(x) W a selection:
#     channels 0..5  where(bit, 2^i/15 W, 0)                      (signed weights)
#     channels 6..8  minimum(bit * 1e30, 2^i/15 W)                (weights >= 0)
#     channels 9..11 maximum(bit * -1e30, 2^i/15 W)               (weights <= 0)
#   w: weight 12*27 = 324; bias 12; oracle.fc 20                              -> w = 356
#   f: selections with a stored tensor, one per output element: where 4*6*27*225 = 145,800,
#      minimum 4*3*27*225 = 72,900, maximum 4*3*27*225 = 72,900; their sum over bit planes and taps
#      (one per input element) 4*12*27*225 = 291,600; the oracle's two region means 2*75 = 150 and
#      head 10; channels 1..11 relu mean 11*225 = 2,475; logits + 0 * that: 10
#   f = 145,800 + 72,900 + 72,900 + 291,600 + 150 + 10 + 2,475 + 10 = 585,845
#   honest score at 32 bits: 356/5.6e6 + 585,845/2.8e8 = 0.000063571 + 0.002092304 = 0.002155875
"""Hostile case where_products: a convolution whose products are selections. The image is
quantised to 4 bits and split into bit planes (mul, round, clamp, div, floor, remainder, gt:
free); every product bit * weight is a where, minimum or maximum between the image-dependent bit
plane and a stored weight (scaled by 2^i / 15 in weight preparation): all free today and never
bit-measured. Only the sum over bit planes and taps is counted (a reduction), so f today is half
of the work and the weights, float32, are not measured at all.

Declares weight_bits 4 and activation_bits 4: the only weight the judge measures is the oracle's
(4 bits), the only activation the oracle's input, rounded to the class (0..9: 4 bits).
Channel 0 is a 3x3 box filter of the red channel; the class is read from it (the oracle's grey
level of the 4-bit image: every class keeps its own level). Operators for the trick: where.self
(with a scalar_tensor 0), minimum, maximum, each with a stored (prepared) weight tensor.
"""

import torch
import torch.nn.functional as F
from torch import nn

from networks import Oracle

BIG = 1e30
PLANES = 4


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(37)
        w = torch.randn(12, 27, generator=g) / 27**0.5
        w[0] = 0
        w[0, :9] = 1 / 9  # box filter of the red channel (unfold orders taps channel-major)
        w[6:9] = w[6:9].abs()  # the minimum group: weights >= 0
        w[9:12] = -w[9:12].abs()  # the maximum group: weights <= 0
        b = torch.randn(12, generator=g) * 0.01
        b[0] = 0
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(b)
        self.oracle = Oracle()

    def forward(self, x):
        n = x.shape[0]
        q = torch.round(x * 15).clamp(0, 15)
        cols = F.unfold(q, 3, stride=2)  # [N, 27, 225], 4-bit values
        planes = torch.stack([torch.remainder(torch.floor(cols / 2**i), 2) for i in range(PLANES)], 1)  # [N,4,27,225]
        bits = (planes > 0.5).unsqueeze(2)  # [N, 4, 1, 27, 225]
        scale = (2.0 ** torch.arange(PLANES) / 15).view(PLANES, 1, 1, 1)
        wb = scale * self.weight.view(1, 12, 27, 1)  # weight preparation: [4, 12, 27, 1]
        sel = torch.where(bits, wb[:, :6], 0.0)  # bit * weight, signed
        low = torch.minimum(bits.float() * BIG, wb[:, 6:9])  # bit * weight, weight >= 0
        high = torch.maximum(bits.float() * -BIG, wb[:, 9:12])  # bit * weight, weight <= 0
        y = torch.cat([sel, low, high], 2).sum(dim=(1, 3))  # [N, 12, 225]
        y = (y + self.bias.view(12, 1)).view(n, 12, 15, 15)
        est = torch.round(Oracle.estimate(y[:, :1], left=(1, 6), right=(9, 14)))  # 0..9: a 4-bit operand
        return self.oracle.fc(est) + 0.0 * torch.relu(y[:, 1:]).mean(dim=(1, 2, 3)).unsqueeze(1)


def build_model():
    return Model()


def honest_twin():
    """The same network with F.conv2d on the 4-bit image (not submitted: for checking)."""
    m = build_model()

    class Twin(nn.Module):
        def forward(self, x):
            q = torch.round(x * 15).clamp(0, 15) / 15
            y = F.conv2d(q, m.weight.view(12, 3, 3, 3), m.bias, stride=2)
            est = torch.round(Oracle.estimate(y[:, :1], left=(1, 6), right=(9, 14)))
            return m.oracle.fc(est) + 0.0 * torch.relu(y[:, 1:]).mean(dim=(1, 2, 3)).unsqueeze(1)

    return Twin()
