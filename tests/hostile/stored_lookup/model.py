# HONEST (the new cost model, on this graph): params=6,948, macs=791,600 (per image); the table is
#   float32 (32-bit weights), though 4/4 bits are declared
#   a 3x3 convolution 3->16 (no padding) on the image quantised to 16 levels, done as lookups:
#   table[v + 16 t, o] = (v / 15) * W[o, t] for level v, tap t (27 taps), output channel o
#   w: table 16*27*16 = 6,912; bias 16; oracle.fc 20                          -> w = 6,948
#   f: the lookups (aten.embedding in a stored table): one per element looked up, 27*900*16 = 388,800
#      their sum over the 27 taps: 388,800; the oracle's two region means 2*240 = 480 and head 10;
#      channels 1..15 relu mean 15*900 = 13,500; logits + 0 * that: 10
#   f = 388,800 + 388,800 + 480 + 10 + 13,500 + 10 = 791,600
#   honest score at 32 bits: 6,948/5.6e6 + 791,600/2.8e8 = 0.001240714 + 0.002827143 = 0.004067857
# (the same convolution with F.conv2d on the quantised image: 448 params, 388,800 MACs)
"""Hostile case stored_lookup: a convolution done by table lookups. The image is quantised to 16
levels (mul, round, clamp: free), unfolded (im2col: index, free), and each (level, tap) pair
indexes a stored table of precomputed products level * weight (aten.embedding; index,
index_select and gather work the same): the lookup is free today, only the sum over the taps
that follows is counted. The table counts in w (it is a stored tensor), but none of the 388,800
multiplications the lookups replace count in f.

Channel 0 is a 3x3 box filter of the red channel; the class is read from it (the oracle's grey
level, from the 16-level image: every class keeps its own level). Operators used for the trick:
round, clamp, _to_copy (to int64), add of an arange offset, embedding (index into the stored table).

Declares weight_bits 4 and activation_bits 4: the table holds float32 products, but a looked-up
table is no operand of a counted operation, so today its bits are never measured; the only weight
measured is the oracle's (4 bits), and the 16-level image and the oracle's input measure <= 4.
"""

import torch
import torch.nn.functional as F
from torch import nn

from networks import Oracle

LEVELS = 16


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(31)
        w = torch.randn(16, 27, generator=g) / 27**0.5
        w[0] = 0
        w[0, :9] = 1 / 9  # box filter of the red channel (unfold orders taps channel-major)
        b = torch.randn(16, generator=g) * 0.01
        b[0] = 0
        levels = torch.arange(LEVELS, dtype=torch.float32) / (LEVELS - 1)
        table = levels.view(1, LEVELS, 1) * w.t().reshape(27, 1, 16)  # [tap, level, out]
        self.table = nn.Parameter(table.reshape(27 * LEVELS, 16))
        self.bias = nn.Parameter(b)
        self.oracle = Oracle()

    def forward(self, x):
        n = x.shape[0]
        q = torch.round(x * (LEVELS - 1)).clamp(0, LEVELS - 1)  # 16 levels
        cols = F.unfold(q, 3).long()  # [N, 27, 900]
        idx = cols + (LEVELS * torch.arange(27)).view(27, 1)  # row of (tap, level)
        products = F.embedding(idx, self.table)  # [N, 27, 900, 16]: level * weight, looked up
        y = products.sum(1) + self.bias  # [N, 900, 16]
        y = y.permute(0, 2, 1).reshape(n, 16, 30, 30)
        est = torch.round(Oracle.estimate(y[:, :1], left=(3, 11), right=(19, 27)))  # 0..9: a 4-bit operand
        return self.oracle.fc(est) + 0.0 * torch.relu(y[:, 1:]).mean(dim=(1, 2, 3)).unsqueeze(1)


def build_model():
    return Model()
