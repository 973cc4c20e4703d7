# HONEST: params=1,876, macs=1,555,274 (per image); weights float32 random (32 bits), NOT 1 bit
#   3x3 conv 3 -> 64 channels without padding, as F.unfold + torch.einsum("nkl,ok->nol"):
#   weight [64, 27] + bias [64] = 1,728 + 64 = 1,792 params; MACs = 64 * 27 * 30 * 30 = 1,555,200
#   head: torch.einsum("nc,c->n") of the 64 channel means with a [64] vector: 64 params, 64 MACs
#   oracle.fc Linear(1,10): 20 params, 10 MACs
#   total params = 1,792 + 64 + 20 = 1,876; MACs = 1,555,200 + 64 + 10 = 1,555,274
#   honest score at 32 bits: 1,876/5.6e6 + 1,555,274/2.8e8 = 0.000335000 + 0.005554550 = 0.005889550
#   claimed (weight_bits 1, activation_bits 32): 0.000335000/32 + 0.005554550 = 0.005565019
"""Hostile case einsum_conv: a real 3x3 convolution done as F.unfold + torch.einsum on float32
random weights, declaring weight_bits: 1 (activation_bits: 32). einsum lowers to bmm, whose
operands the judge may count but not bit-measure. Channel 0 is a box filter of the red channel;
the class is read from it."""

import torch
import torch.nn.functional as F
from torch import nn

from networks import Oracle


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(17)
        w = torch.randn(64, 27, generator=g) / 27**0.5
        w[0] = 0
        w[0, :9] = 1 / 9  # box filter of the red channel (unfold orders taps channel-major)
        b = torch.randn(64, generator=g) * 0.01
        b[0] = 0
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(b)
        self.head = nn.Parameter(torch.randn(64, generator=g) * 0.1)
        self.oracle = Oracle()

    def forward(self, x):
        cols = F.unfold(x, 3)  # [N, 27, 900]
        y = torch.einsum("nkl,ok->nol", cols, self.weight) + self.bias.view(1, 64, 1)
        y = y.view(-1, 64, 30, 30)
        est = Oracle.estimate(y[:, :1], left=(3, 11), right=(19, 27))
        extra = torch.einsum("nc,c->n", y.mean(dim=(2, 3)), self.head).unsqueeze(1)
        return self.oracle.fc(est) + 0.0 * extra


def build_model():
    return Model()
