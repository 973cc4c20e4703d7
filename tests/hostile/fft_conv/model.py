# HONEST: params=1,748, macs=1,769,482 (per image), float32 weights (32 bits)
#   a circular 3x3 convolution, 3 -> 64 channels, 32x32 output, computed with torch.fft:
#   as a direct convolution: 64 * 27 * 32 * 32 = 1,769,472 MACs; params 64*27 = 1,728 (no bias)
#   (as executed: rfft2 of x and of the kernels, a complex product-sum over 3 input channels:
#    64 * 3 * 32 * 17 = 104,448 complex multiplies = 417,792 real multiplies, plus the FFTs)
#   oracle.fc Linear(1,10): 20 params, 10 MACs
#   total params = 1,728 + 20 = 1,748; MACs (direct-conv convention) = 1,769,472 + 10 = 1,769,482
#   honest score at 32 bits: 1,748/5.6e6 + 1,769,482/2.8e8 = 0.000312143 + 0.006319579 = 0.006631722
"""Hostile case fft_conv: a real convolution done in the frequency domain (rfft2, an element-wise
complex product summed over input channels, irfft2): no convolution or matrix product is
dispatched. Channel 0 is a 3x3 box filter of the red channel and the class is read from it."""

import torch
from torch import nn

from networks import Oracle


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(13)
        w = torch.randn(64, 3, 3, 3, generator=g) / 27**0.5
        w[0] = 0
        w[0, 0] = 1 / 9
        self.weight = nn.Parameter(w)
        self.oracle = Oracle()

    def forward(self, x):
        X = torch.fft.rfft2(x)  # [N, 3, 32, 17]
        K = torch.fft.rfft2(self.weight, s=(32, 32))  # [64, 3, 32, 17]
        Y = (X.unsqueeze(1) * K.unsqueeze(0)).sum(2)  # [N, 64, 32, 17]
        y = torch.fft.irfft2(Y, s=(32, 32))  # circular conv: y[i, j] = sum_ab w[a, b] x[i-a, j-b]
        est = Oracle.estimate(y[:, :1], left=(6, 12), right=(22, 28))  # input columns 4..11 and 20..27
        return self.oracle.fc(est) + 0.0 * y[:, 1:].mean(dim=(1, 2, 3)).unsqueeze(1)


def build_model():
    return Model()
