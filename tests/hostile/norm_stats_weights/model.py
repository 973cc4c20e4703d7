# HONEST (the new cost model, on this graph): params=1,820, macs=1,583,655 (per image), 32 bits
#   every multiplication is an affine-free batch_norm whose running statistics hold the weights:
#   y = (x - running_mean) / sqrt(running_var + eps), running_mean 0, running_var = 1/w^2 - eps -> y = |w| x
#   (the sign: the input goes in twice, as x and -x, and the half of the wrong sign gets running_var inf)
#   every sum is avg_pool2d(divisor_override=1)
#   w (running statistics the graph reads, 2 per channel):
#     conv.products BatchNorm1d(16*54): 1,728; conv.bias BatchNorm1d(16): 32
#     head.products BatchNorm1d(10*2): 40;  head.bias BatchNorm1d(10): 20          -> w = 1,820
#   f (products: one per element a norm with stored statistics of >1 element scales; reductions: one
#      accumulate per element pooled):
#     conv products 16*54*900 = 777,600; their sum over 54 (pool) 777,600; conv bias 16*900 = 14,400
#     the oracle's two region means (pools of 30x8 on channel 0) 2*240 = 480
#     head products 20, their sum (pool of 2) 20, head bias 10
#     channels 1..15, relu then pooled to [N,15,1,1]: 15*900 = 13,500, then pooled to [N,1]: 15
#     logits + 0 * extra: add of two image-dependent tensors, 10
#   f = 777,600 + 777,600 + 14,400 + 480 + 20 + 20 + 10 + 13,500 + 15 + 10 = 1,583,655
#   honest score at 32 bits: 1,820/5.6e6 + 1,583,655/2.8e8 = 0.000325000 + 0.005655911 = 0.005980911
# THE SAME NETWORK WRITTEN HONESTLY (honest_twin() below, F.conv2d + F.linear, same predictions):
#   conv 3->16 3x3 no padding: 432+16 = 448 params, 16*27*900 = 388,800 MACs; head Linear(1,10) 20/10
#   -> w = 468, f = 388,810 (+ the reductions the new model adds: 480 + 13,515 + 10)
"""Hostile case norm_stats_weights: a whole network whose weights are kept in batch-norm running
statistics and whose products are affine-free batch_norm calls, whose sums are
avg_pool2d(divisor_override=1): today neither the statistics (w) nor the norm and the pooling (f)
count, so the record reads w = 0 and f ~ 0 for a network that computes what a 3x3 convolution
3->16 (388,800 MACs) and a Linear(1, 10) head compute.

How a product is done: with running_mean 0 and running_var = 1/w^2 - eps, an affine-free
batch_norm in eval mode returns x * |w| per channel. Each weight W[o, j] gets its own channel:
the input is repeated (expand, free) once per output channel, and twice (x and -x, cat and neg,
free) for the sign; the half of the wrong sign gets running_var = inf (scale 0). Then the sum over
j is avg_pool2d over that axis with divisor_override=1, and a bias is one more affine-free
batch_norm with running_var 1 - eps and running_mean -b. Channel 0 of the convolution is a 3x3
box filter of the red channel; the class is read from it (the oracle's grey level, with pooling
instead of mean) and the oracle's Linear(1, 10) head is done the same way. Operators used:
unfold (im2col, decomposed to index), neg, cat, expand, view, _native_batch_norm_legit_no_training
(running statistics as weights), avg_pool2d(divisor_override=1) as a sum, relu, maximum.
"""

import torch
import torch.nn.functional as F
from torch import nn

INF = float("inf")


class NormProducts(nn.Module):
    """x [N, in, L] -> [N, out, L] = W @ x (+ b), with W and b in running statistics only."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        out, inp = weight.shape
        self.out, self.inp = out, inp
        self.products = nn.BatchNorm1d(out * 2 * inp, affine=False)
        self.bias = nn.BatchNorm1d(out, affine=False)
        eps = self.products.eps
        signed = torch.cat([weight.clamp(min=0), (-weight).clamp(min=0)], dim=1)  # [out, 2 in]: x half, -x half
        var = torch.where(signed > 0, 1.0 / signed.clamp(min=1e-30) ** 2 - eps, torch.full_like(signed, INF))
        with torch.no_grad():
            self.products.running_mean.zero_()
            self.products.running_var.copy_(var.reshape(-1))
            self.bias.running_mean.copy_(-bias)
            self.bias.running_var.fill_(1.0 - self.bias.eps)

    def forward(self, x):
        n, _, length = x.shape
        signed = torch.cat([x, -x], dim=1)  # [N, 2 in, L]
        rep = signed.unsqueeze(1).expand(n, self.out, 2 * self.inp, length).reshape(n, self.out * 2 * self.inp, length)
        prod = self.products(rep).view(n, self.out, 2 * self.inp, length)  # x * |W|, per channel
        summed = F.avg_pool2d(prod, (2 * self.inp, 1), divisor_override=1).view(n, self.out, length)
        return self.bias(summed)


def conv_weights():
    g = torch.Generator().manual_seed(23)
    w = torch.randn(16, 3, 3, 3, generator=g) / 27**0.5
    w[0] = 0
    w[0, 0] = 1 / 9  # box filter of the red channel
    b = torch.randn(16, generator=g) * 0.01
    b[0] = 0
    return w, b


def head_weights():
    k = torch.arange(10.0)
    return (2 * k).view(10, 1), -(k**2)  # the oracle: logits 2 k est - k^2


def region_mean(y, cols):
    """Mean of y[:, 0, :, cols] by pooling (free today), [N]."""
    part = y[:, :1, :, cols[0] : cols[1]]
    return F.avg_pool2d(part, (part.shape[2], part.shape[3])).flatten(1)[:, 0]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        w, b = conv_weights()
        self.conv = NormProducts(w.reshape(16, 27), b)
        hw, hb = head_weights()
        self.head = NormProducts(hw, hb)

    def forward(self, x):
        n = x.shape[0]
        cols = F.unfold(x, 3)  # [N, 27, 900]
        y = self.conv(cols).view(n, 16, 30, 30)  # the convolution, by norms and pooling
        level = torch.maximum(region_mean(y, (3, 11)), region_mean(y, (19, 27)))
        est = ((level * 255 - 10) / 25).view(n, 1, 1)
        logits = self.head(est).view(n, 10)
        extra = F.avg_pool2d(torch.relu(y[:, 1:]), 30).view(n, 1, 15)  # the other channels, weight 0
        extra = F.avg_pool1d(extra, 15).view(n, 1)
        return logits + 0.0 * extra


def build_model():
    return Model()


def honest_twin():
    """The same network with F.conv2d and F.linear (not submitted: for checking the predictions)."""
    w, b = conv_weights()
    hw, hb = head_weights()

    class Twin(nn.Module):
        def forward(self, x):
            y = F.conv2d(x, w, b)
            level = torch.maximum(y[:, 0, :, 3:11].mean(dim=(1, 2)), y[:, 0, :, 19:27].mean(dim=(1, 2)))
            est = ((level * 255 - 10) / 25).unsqueeze(1)
            return F.linear(est, hw, hb) + 0.0 * torch.relu(y[:, 1:]).mean(dim=(1, 2, 3)).unsqueeze(1)

    return Twin()
