# HONEST (the new cost model, on this graph): params=196,884, macs=396,819 (per image); the weight that
#   does the work is dense float32: 0 % pruned, 32 bits
#   fc Linear(768, 256) on avg_pool2d(x, 2): weight 196,608 + bias 256; oracle.fc 20 -> w = 196,884
#   (its ternary copy is prepared from the same stored weight: no stored element of its own)
#   f: the ternary use 768*256 = 196,608; the raw use 196,608; oracle head 10;
#      avg_pool2d(x, 2) 3,072 (a reduction); mean of relu(h[:, 2:]) 254; mean of the ternary use's
#      output 256; their sum (add of two image-dependent tensors) 1; logits + 0 * that: 10
#   f = 196,608 + 196,608 + 10 + 3,072 + 254 + 256 + 1 + 10 = 396,819
#   honest score at 32 bits, no pruning: 196,884/5.6e6 + 396,819/2.8e8 = 0.035157857 + 0.001417211
#                                       = 0.036575068
"""Hostile case mixed_use_credit: one stored weight used twice, the credit taken from the
favourable use. The fc's weight W (float32, dense) is first used as its ternary, 95 %-zero copy
Wq = where(|W| > 0.07, sign(W) * 0.1, 0) (weight preparation from W alone), in a linear whose
output is added with weight 0; then W itself, raw, in the linear that does the work. Today the
zeros of a weight operand count once per set of stored tensors it was prepared from, and bits
are measured once per (stored tensors, shape, channel dimension): both uses come from {W}, so
the raw use inherits the ternary use's 2 bits and its zeros (the raw use's own zeros are
"already seen"). The record credits a dense float32 weight as 2-bit and ~95 % pruned.

Units 0 and 1 of the raw fc average the red level of the left and right halves (weights 1/96 on
96 pooled features each, below the threshold: zero in Wq), the oracle's grey level. Declares
unstructured_pruning 0.93 and weight_bits 4 (the oracle head's 2k measure 4), activation_bits 32.
Operators: linear twice on the same stored weight, the first through abs, gt, sign, mul, where.
"""

import torch
import torch.nn.functional as F
from torch import nn

from networks import Oracle

THRESHOLD, LEVEL = 0.07, 0.1


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(43)
        w = torch.randn(256, 768, generator=g) / 768**0.5
        red = torch.zeros(3, 16, 16)
        w[0] = red.index_fill(2, torch.arange(1, 7), 1.0).mul(torch.tensor([1.0, 0, 0]).view(3, 1, 1)).flatten() / 96
        w[1] = red.index_fill(2, torch.arange(9, 15), 1.0).mul(torch.tensor([1.0, 0, 0]).view(3, 1, 1)).flatten() / 96
        b = torch.randn(256, generator=g) * 0.01
        b[:2] = 0
        self.fc = nn.Linear(768, 256)
        with torch.no_grad():
            self.fc.weight.copy_(w)
            self.fc.bias.copy_(b)
        self.oracle = Oracle()

    def forward(self, x):
        n = x.shape[0]
        feats = F.avg_pool2d(x, 2).reshape(n, 768)
        w = self.fc.weight
        ternary = torch.where(w.abs() > THRESHOLD, torch.sign(w) * LEVEL, 0.0)  # 95 % zeros, 3 values
        shadow = F.linear(feats, ternary)  # first use: what the judge credits
        h = F.linear(feats, w, self.fc.bias)  # second use: the raw float32 weight does the work
        level = torch.maximum(h[:, 0], h[:, 1])
        est = ((level * 255 - 10) / 25).unsqueeze(1)
        extra = torch.relu(h[:, 2:]).mean(1, keepdim=True) + shadow.mean(1, keepdim=True)
        return self.oracle.fc(est) + 0.0 * extra


def build_model():
    return Model()
