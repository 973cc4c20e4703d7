# HONEST (the new cost model, on this graph): params=196,884, macs=200,208 (per image); the fc is a
#   binary layer (0/1 times a scale per output channel: 1 bit), the oracle's head 4 bits -> 4 bits
#   fc: weight = mask [256, 768] (0/1, stored) * scale (256 stored numbers, broadcast by a stride-0
#   view): both count, the mask against a partner storing fewer elements is a weight
#   w: mask 196,608; scale 256; oracle.fc 20                                 -> w = 196,884
#   pruned: the zeros of the mask, 98,741 (of its 196,608): p_u = 98,741 / 196,884 = 0.501519
#     (+ the oracle's zero row: 1 structured zero, p_s = 0.000005); the declared 0.99 does not verify
#   f: fc 768*256 = 196,608; oracle head 10; avg_pool2d(x, 2) 3,072 (a reduction); mean of
#      relu(h[:, 2:]) 254; logits + 0 * that: 10
#   f = 196,608 + 10 + 3,072 + 254 + 10 = 199,954
#   honest score (weight_bits 4, activation_bits 32; p_u 0.501519 credited, nothing on the MAC term):
#     (1 - 0.501519 - 0.000005) * (4/32) * 196,884/5.6e6 + 199,954/2.8e8
#     = 0.002190670 + 0.000714121 = 0.002904791
"""Hostile case broadcast_mask: the weights hide in a 0/1 tensor that the judge takes for a pruning
mask. Today a stored 0/1 tensor is a mask (not counted in w) when each of its uses is a product
with a stored tensor of its shape. The partner here has the mask's shape [256, 768] but stores 256
numbers: a per-output-channel scale expanded with stride 0 (a non-persistent buffer made in the
factory; the archive keeps 256 floats with strides [1, 0]). So w counts 256 for the fc, not the
196,608 bits of the mask that carry all of its information: a binary layer (0/1 times a scale
per output channel) for the price of its scales.

The mask's zeros count as pruning too: the prepared weight mask * scale has 98,741 zeros, over a
w of 276, so the measured unstructured pruning is capped at 1.0 and a claim of 0.99 verifies:
the weight term is divided by 100 on top. Units 0 and 1 of the fc average the red level of the
left and right halves (96 ones, scale 1/96), the oracle's grey level. With a plain broadcast
partner ([256, 1], no expand) today's rule sees the shapes differ and counts the mask.
Operators: mul.Tensor (mask * stride-0 partner, weight preparation), linear.
"""

import torch
import torch.nn.functional as F
from torch import nn

from networks import Oracle


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(47)
        mask = (torch.rand(256, 768, generator=g) > 0.5).float()
        red = torch.zeros(3, 16, 16)
        mask[0] = red.index_fill(2, torch.arange(1, 7), 1.0).mul(torch.tensor([1.0, 0, 0]).view(3, 1, 1)).flatten()
        mask[1] = red.index_fill(2, torch.arange(9, 15), 1.0).mul(torch.tensor([1.0, 0, 0]).view(3, 1, 1)).flatten()
        scale = torch.randn(256, 1, generator=g) * 0.05
        scale[:2] = 1 / 96
        self.register_buffer("mask", mask)  # 0/1: "a pruning mask"
        self.register_buffer("scale", scale.expand(256, 768), persistent=False)  # stores 256 numbers
        self.oracle = Oracle()

    def forward(self, x):
        n = x.shape[0]
        h = F.linear(F.avg_pool2d(x, 2).reshape(n, 768), self.mask * self.scale)  # [N, 256]
        level = torch.maximum(h[:, 0], h[:, 1])
        est = ((level * 255 - 10) / 25).unsqueeze(1)
        return self.oracle.fc(est) + 0.0 * torch.relu(h[:, 2:]).mean(1, keepdim=True)


def build_model():
    return Model()
