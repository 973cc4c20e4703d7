# HONEST (without the padding): params=1,812, macs=1,769,482 (per image), 32 bits
#   oracle.fc Linear(1,10): 20 params, 10 MACs
#   conv Conv2d(3,64,3,pad 1): 64*27+64 = 1,792 params; 64*27*32*32 = 1,769,472 MACs
#   honest score: 1,812/5.6e6 + 1,769,482/2.8e8 = 0.000323571 + 0.006319579 = 0.006643150
# PADDING: pad Linear(2000, 500, bias=False), every weight 0: 1,000,000 params, 1,000,000 MACs,
#   500 output channels entirely zero -> 1,000,000 structured zeros.
# AS MEASURED: w = 1,001,812, f = 2,769,482, structured zeros 1,000,000 (+ the oracle's zero row:
#   oracle.fc.weight[0] = 0, one more all-zero output channel of 1 element) = 1,000,001
#   p_s = 1,000,001 / 1,001,812 = 0.998192... -> declared structured_pruning: 0.998 (<= measured)
#   claimed score: (1-0.998)*1,001,812/5.6e6 + (1-0.998)*2,769,482/2.8e8 = 0.000357790 + 0.000019782
#   = 0.000377572, 17.6x better than honest: the zeros discount the real conv's MACs by (1 - p_s).
"""Hostile case zero_padding: a small honest network plus a large layer of all-zero weights whose
(zero) output is added back; the zero output channels inflate the measured structured pruning,
which discounts the MAC term of the real layers too."""

import torch
from torch import nn

from networks import Oracle


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.oracle = Oracle()
        self.conv = nn.Conv2d(3, 64, 3, padding=1)
        self.pad = nn.Linear(2000, 500, bias=False)
        g = torch.Generator().manual_seed(7)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) / 27**0.5)
            self.conv.bias.copy_(torch.randn(64, generator=g) * 0.01)
            self.pad.weight.zero_()

    def forward(self, x):
        logits = self.oracle(x)
        feat = torch.relu(self.conv(x)).mean(dim=(2, 3))  # [N, 64], real work, weight 0 in the logits
        zeros = self.pad(x.flatten(1)[:, :2000])  # [N, 500], all zero
        return logits + 0.0 * feat.sum(1, keepdim=True) + zeros.sum(1, keepdim=True)


def build_model():
    return Model()
