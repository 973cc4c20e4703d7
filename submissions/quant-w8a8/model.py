"""The baseline CNN with brevitas quantisation: 8-bit weights (per output channel) and
8-bit activations (per tensor, with a zero point) on the input of every layer but the first.

Like the baseline, it averages its logits over the image and its mirror image in eval mode.
Same layer names as submissions/baseline-cnn, so its float weights load as a starting point;
the weights saved here are fine-tuned with quantisation in the loop (quantisation-aware training).
"""

import brevitas.nn as qnn
from brevitas.quant import Int8WeightPerChannelFloat, ShiftedUint8ActPerTensorFloat
from torch import nn

WEIGHT_BITS = 8
ACT_BITS = 8
WIDTHS = (64, 256, 256)
WHITEN_WIDTH = 24
LOGIT_SCALE = 1 / 9


def qconv(c_in: int, c_out: int, k: int, **kw) -> qnn.QuantConv2d:
    return qnn.QuantConv2d(c_in, c_out, k, weight_quant=Int8WeightPerChannelFloat, weight_bit_width=WEIGHT_BITS, **kw)


def qact() -> nn.Module:
    return qnn.QuantIdentity(act_quant=ShiftedUint8ActPerTensorFloat, bit_width=ACT_BITS, return_quant_tensor=False)


class BatchNorm(nn.BatchNorm2d):
    def __init__(self, width: int):
        super().__init__(width, eps=1e-12, momentum=0.4)
        self.weight.requires_grad = False


class ConvGroup(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = qconv(c_in, c_out, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = BatchNorm(c_out)
        self.quant1 = qact()
        self.conv2 = qconv(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = BatchNorm(c_out)
        self.quant2 = qact()
        self.act = nn.GELU()

    def forward(self, x):
        x = self.quant1(self.act(self.norm1(self.pool(self.conv1(x)))))
        return self.quant2(self.act(self.norm2(self.conv2(x))))


class Net(nn.Module):
    def __init__(self, widths=WIDTHS):
        super().__init__()
        self.whiten = qconv(3, WHITEN_WIDTH, 2, padding=0, bias=True)
        self.act = nn.GELU()
        self.quant = qact()
        self.group1 = ConvGroup(WHITEN_WIDTH, widths[0])
        self.group2 = ConvGroup(widths[0], widths[1])
        self.group3 = ConvGroup(widths[1], widths[2])
        self.pool = nn.MaxPool2d(3)
        self.head = qnn.QuantLinear(widths[2], 10, bias=False, weight_quant=Int8WeightPerChannelFloat,
                                    weight_bit_width=WEIGHT_BITS)

    def forward(self, x):
        if self.training:
            return self.logits(x)
        return (self.logits(x) + self.logits(x.flip(3))) / 2  # in eval mode: averaged over a horizontal flip

    def logits(self, x):
        x = self.quant(self.act(self.whiten(x)))
        x = self.group3(self.group2(self.group1(x)))
        x = self.pool(x).flatten(1)
        return self.head(x) * LOGIT_SCALE


def build_model() -> nn.Module:
    return Net()
