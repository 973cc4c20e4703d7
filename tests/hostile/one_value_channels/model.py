# HONEST: params=98,324, macs=98,314 (per image); weights float32 random (32 bits), NOT 1 bit
#   hidden = Linear(768, 128, no bias) on avg_pool2d(x, 2).flatten(1) (3*16*16 = 768 features),
#   done as 768 calls F.linear(x[:, j:j+1], W[:, j:j+1]), each weight slice [128, 1]:
#   768 * 128 = 98,304 params, 768 * 128 = 98,304 MACs
#   oracle.fc Linear(1,10): 20 params, 10 MACs
#   total params = 98,304 + 20 = 98,324; MACs = 98,304 + 10 = 98,314
#   honest score at 32 bits: 98,324/5.6e6 + 98,314/2.8e8 = 0.017557857 + 0.000351121 = 0.017908979
#   claimed (1-bit weights, 32-bit activations): 0.017557857/32 + 0.000351121 = 0.000899804
"""Hostile case one_value_channels: a linear layer done as one F.linear per input feature, so every
weight the judge sees has output channels of a single value (one level: "1 bit" per channel),
on float32 random weights; declares weight_bits: 1."""

import torch
import torch.nn.functional as F
from torch import nn

from networks import Oracle


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(19)
        self.weight = nn.Parameter(torch.randn(128, 768, generator=g) / 768**0.5)
        self.oracle = Oracle()

    def forward(self, x):
        feat = F.avg_pool2d(x, 2).flatten(1)  # [N, 768]
        hidden = sum(F.linear(feat[:, j : j + 1], self.weight[:, j : j + 1]) for j in range(768))  # [N, 128]
        return self.oracle(x) + 0.0 * torch.relu(hidden).mean(1, keepdim=True)


def build_model():
    return Model()
