# HONEST: params=468, macs=388,810 (per image), float32 weights (32 bits)
#   conv weight [16, 3, 3, 3] + bias [16]: 432 + 16 = 448 params
#   conv as im2col: F.unfold(x, 3) -> [N, 27, 900] (30x30 output, no padding), times the weight
#   [16, 27, 1] broadcast, summed over 27: MACs = out_channels * C*k*k * L = 16 * 27 * 900 = 388,800
#   oracle.fc Linear(1,10): 20 params, 10 MACs
#   total params = 448 + 20 = 468; total MACs = 388,800 + 10 = 388,810
#   honest score at 32 bits: 468/5.6e6 + 388,810/2.8e8 = 0.0000835714 + 0.0013886071 = 0.0014721786
"""Hostile case unfold_conv: a real 3x3 convolution written as F.unfold + broadcast multiply + sum,
so that no convolution or matrix product is dispatched: its MACs are not counted, and its
weights are never bit-measured. Channel 0 is a 3x3 box filter of the red channel; the class is
read from that channel's output, so the uncounted convolution does the real work."""

import torch
import torch.nn.functional as F
from torch import nn

from networks import Oracle


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(11)
        w = torch.randn(16, 3, 3, 3, generator=g) / 27**0.5
        w[0] = 0
        w[0, 0] = 1 / 9  # box filter of the red channel
        b = torch.randn(16, generator=g) * 0.01
        b[0] = 0
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(b)
        self.oracle = Oracle()

    def forward(self, x):
        cols = F.unfold(x, 3)  # [N, 27, 900]
        y = (cols.unsqueeze(1) * self.weight.reshape(16, 27, 1)).sum(2) + self.bias.view(1, 16, 1)  # [N, 16, 900]
        y = y.view(-1, 16, 30, 30)  # output column j averages input columns j..j+2
        est = Oracle.estimate(y[:, :1], left=(3, 11), right=(19, 27))
        return self.oracle.fc(est) + 0.0 * y[:, 1:].mean(dim=(1, 2, 3)).unsqueeze(1)


def build_model():
    return Model()
