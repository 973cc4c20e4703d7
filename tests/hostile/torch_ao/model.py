# HONEST: params=468 (448 of them int8 conv weights and float bias), macs=442,378 (per image)
#   conv Conv2d(3, 16, 3, padding=1), quantised (qint8 weights per channel, quint8 activations):
#   16*27 = 432 weights + 16 bias = 448 params; MACs 16 * 27 * 32 * 32 = 442,368
#   fc (the oracle) Linear(1, 10), float after the DeQuantStub: 20 params, 10 MACs
#   totals: params 468, MACs 442,378; at 8 bits: 0.25 * 468/5.6e6 + 0.25 * 442,378/2.8e8
#   = 0.0000208929 + 0.0003949804 = 0.0004158732
"""Hostile case torch_ao: eager-mode post-training static quantisation with torch.ao.quantization:
QuantStub -> Conv2d -> ReLU -> DeQuantStub -> Linear. The factory builds the float model, sets a
qconfig, prepares, calibrates on a few deterministic random images and converts; the state_dict
of the converted model (quantized tensors, scales, zero points) loads into the same structure.
Conv channel 0 is a box filter of the red channel and the class is read from its output."""

import torch
from torch import nn
from torch.ao import quantization as tq

from networks import estimate_from_level, oracle_weights_


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.relu = nn.ReLU()
        self.dequant = tq.DeQuantStub()
        self.fc = oracle_weights_(nn.Linear(1, 10))  # the oracle's head
        g = torch.Generator().manual_seed(31)
        with torch.no_grad():
            w = torch.randn(16, 3, 3, 3, generator=g) / 27**0.5
            w[0] = 0
            w[0, 0] = 1 / 9
            self.conv.weight.copy_(w)
            self.conv.bias.copy_(torch.randn(16, generator=g) * 0.01)
            self.conv.bias[0] = 0

    def forward(self, x):
        y = self.dequant(self.relu(self.conv(self.quant(x))))  # [N, 16, 32, 32]
        r = y[:, 0, 1:31]  # rows away from the zero padding
        level = torch.maximum(r[:, :, 4:12].mean(dim=(1, 2)), r[:, :, 20:28].mean(dim=(1, 2)))
        return self.fc(estimate_from_level(level)) + 0.0 * y[:, 1:].mean(dim=(1, 2, 3)).unsqueeze(1)


def build_model():
    torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "fbgemm"
    model = Net().eval()
    model.qconfig = tq.get_default_qconfig(torch.backends.quantized.engine)
    model.fc.qconfig = None  # the oracle head stays float, after the DeQuantStub
    tq.prepare(model, inplace=True)
    g = torch.Generator().manual_seed(37)
    with torch.no_grad():
        model(torch.rand(32, 3, 32, 32, generator=g))
        levels = (10 + 25 * torch.arange(10.0)) / 255  # and the grey levels the task uses
        model(levels.view(10, 1, 1, 1).expand(10, 3, 32, 32).contiguous())
    tq.convert(model, inplace=True)
    return model
