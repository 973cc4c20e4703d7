# HONEST: params=244, macs=402,410 (per image), 32 bits; unstructured pruning 108/244 = 0.442623
#   conv Conv2d(3, 8, 3), no padding, pruned by torch.nn.utils.prune.l1_unstructured(amount=0.5):
#     weight = weight_orig * weight_mask: 216 weights (the mask is not a weight), 108 of them zero
#     (channel 0, the box filter, keeps its 9 taps; its 18 other zeros are pruned ones), bias 8
#   oracle.fc Linear(1, 10): 20 params (its row 0 is zero: 1 structured zero)
#   w = 216 + 8 + 20 = 244; p_u = 108/244 = 0.442623, p_s = 1/244 = 0.004098: declares 0.44
#   f, the network run on the image and on its mirror image (flip averaging), per pass:
#     conv 8*27*900 = 194,400; the oracle's two region means 2*240 = 480; head 10;
#     channels 1..7 relu mean 7*900 = 6,300; logits + 0 * that 10         -> 201,200 per pass
#   f = 2 * 201,200 + 10 (the average: add of the two logits) = 402,410
#   honest score (unstructured_pruning 0.44 credited, 32 bits):
#     (1 - 0.44) * 244/5.6e6 + 402,410/2.8e8 = 0.000024400 + 0.001437179 = 0.001461579
"""Hostile case pruned_twice: not an attack, an honest submission the judge must get right.
A conv pruned with torch.nn.utils.prune.l1_unstructured in the factory (its state_dict holds
weight_orig and weight_mask), in a network that averages its logits over the image and its
mirror image, so the conv runs twice in one forward. Export writes the pruning hook's
weight_orig * weight_mask.to(float32) twice, and the second cast is a cast of the first
(aten.to.dtype of aten.to.dtype of the mask): today's rule for a mask (each use, after one cast,
a product with a stored weight of its shape) does not see through the second cast, so it counts
the mask as weights: the conv's row reads 440 (216 + 216 + 8) and w = 460, the measured
unstructured pruning 108/460 = 0.2348, and the honest claim of 0.44 is refused (not eligible).
Run once, the same conv counts 216 + 8 and the claim verifies.

Channel 0 of the conv is a 3x3 box filter of the red channel (its 9 taps are the largest
weights, so l1 pruning keeps them); the class is read from it (the oracle's grey level, which
the mirror image does not change).
"""

import torch
from torch import nn
from torch.nn.utils import prune

from networks import Oracle


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.oracle = Oracle()
        g = torch.Generator().manual_seed(53)
        with torch.no_grad():
            w = torch.randn(8, 3, 3, 3, generator=g) * 0.03
            w[0] = 0
            w[0, 0] = 1 / 9  # box filter of the red channel: the largest weights, never pruned
            b = torch.randn(8, generator=g) * 0.01
            b[0] = 0
            self.conv.weight.copy_(w)
            self.conv.bias.copy_(b)
        prune.l1_unstructured(self.conv, "weight", amount=0.5)  # weight_orig, weight_mask: 108 zeros

    def one(self, x):
        y = self.conv(x)  # [N, 8, 30, 30]
        est = Oracle.estimate(y[:, :1], left=(3, 11), right=(19, 27))
        return self.oracle.fc(est) + 0.0 * torch.relu(y[:, 1:]).mean(dim=(1, 2, 3)).unsqueeze(1)

    def forward(self, x):
        return (self.one(x) + self.one(x.flip(3))) / 2  # test-time flip averaging: the conv runs twice


def build_model():
    return Net()
