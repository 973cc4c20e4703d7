# HONEST (the new cost model, on this graph): params=468, macs=395,960 (per image), 32 bits
#   a 3x3 convolution 3->16, stride 2, no padding (15x15 = 225 positions), without one product:
#   sum_t c_t w_t = (sum_t (c_t + w_t)^2 - sum_t (c_t - w_t)^2) / 4, and sum_t z_t^2 = 27 var({z_t, -z_t})
#   (54 values of mean 0, correction 0): each square and each sum is inside aten.var
#   w: weight 16*27 = 432; bias 16; oracle.fc 20                              -> w = 468
#   f: the two var reductions, one per input element: 2 * 16*54*225 = 388,800; their difference
#      (sub of two image-dependent tensors) 16*225 = 3,600; the oracle's two region means 2*75 = 150
#      and head 10; channels 1..15 relu mean 15*225 = 3,375, then mean over 15 channels 15;
#      logits + 0 * that: 10
#   f = 388,800 + 3,600 + 150 + 10 + 3,375 + 15 + 10 = 395,960
#   honest score at 32 bits: 468/5.6e6 + 395,960/2.8e8 = 0.000083571 + 0.001414143 = 0.001497714
# (the same convolution with F.conv2d: 16*27*225 = 97,200 MACs)
"""Hostile case free_reductions: a convolution computed by variances, with no multiplication the
judge counts. Polarisation: c.w = ((c + w)^2 - (c - w)^2) / 4, and a sum of squares is a
variance: for the 54 values {z_t, -z_t} (mean 0), var(correction=0) = sum_t z_t^2 / 27. So each
output of the convolution is 27/4 (var(cat(c + w, -(c + w))) - var(cat(c - w, -(c - w)))): an add
of the image and a stored tensor (free: one operand only depends on the image), neg, cat, and
aten.var.correction (free today), then one counted sub per output. The squares and the sums all
happen inside var. (The means are plain means, counted today: adaptive_avg_pool2d to 1x1 would
decompose to mean anyway in this graph, which is decomposed for im2col.)

Channel 0 is a 3x3 box filter of the red channel; the class is read from it (the oracle's grey
level). Operators for the trick: add (image + stored weight), neg, cat, var.correction. Variants
not needed here: softmax / log_softmax hold a sum of exponentials (logsumexp), and
avg_pool2d(divisor_override=1) a plain sum (norm_stats_weights uses that one).
"""

import torch
import torch.nn.functional as F
from torch import nn

from networks import Oracle


def sum_of_squares(z, dim):
    """sum of z^2 over dim, as a variance (times the count)."""
    return torch.var(torch.cat([z, -z], dim), dim=dim, correction=0) * z.shape[dim]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(41)
        w = torch.randn(16, 27, generator=g) / 27**0.5
        w[0] = 0
        w[0, :9] = 1 / 9  # box filter of the red channel (unfold orders taps channel-major)
        b = torch.randn(16, generator=g) * 0.01
        b[0] = 0
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(b)
        self.oracle = Oracle()

    def forward(self, x):
        n = x.shape[0]
        cols = F.unfold(x, 3, stride=2).unsqueeze(1)  # [N, 1, 27, 225]
        w = self.weight.view(1, 16, 27, 1)
        y = (sum_of_squares(cols + w, 2) - sum_of_squares(cols - w, 2)) / 4  # [N, 16, 225]: the convolution
        y = (y + self.bias.view(16, 1)).view(n, 16, 15, 15)
        est = Oracle.estimate(y[:, :1], left=(1, 6), right=(9, 14))
        extra = torch.relu(y[:, 1:]).mean(dim=(2, 3)).mean(1, keepdim=True)
        return self.oracle.fc(est) + 0.0 * extra


def build_model():
    return Model()


def honest_twin():
    """The same network with F.conv2d (not submitted: for checking)."""
    m = build_model()

    class Twin(nn.Module):
        def forward(self, x):
            y = F.conv2d(x, m.weight.view(16, 3, 3, 3), m.bias, stride=2)
            est = Oracle.estimate(y[:, :1], left=(1, 6), right=(9, 14))
            return m.oracle.fc(est) + 0.0 * torch.relu(y[:, 1:]).mean(dim=(1, 2, 3)).unsqueeze(1)

    return Twin()
