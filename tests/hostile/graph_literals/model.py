# HONEST (the new cost model, on this graph): params=24,660, macs=27,698 (per image); 8-bit weights
#   (integer codes, a float scale per output channel), 32-bit activations
#   w: every number the graph makes that a counted operation uses as a weight, once:
#     fc Linear(768, 32): 24,576 codes + 32 scales + 32 biases = 24,640
#     oracle head Linear(1, 10) from arange: 10 weights + 10 biases = 20         -> w = 24,660
#     (the graph writes 4,160 float64 literals: 4,096 of them hold 6 codes each, + 32 scales + 32 biases)
#   f: fc 768*32 = 24,576; head 10; avg_pool2d(x, 2) 3,072 (a reduction: one per input element);
#      mean of relu(h[:, 2:]) 30; logits + 0 * that: 10
#   f = 24,576 + 10 + 3,072 + 30 + 10 = 27,698
#   honest score (weight_bits 8, activation_bits 32): (8/32)*24,660/5.6e6 + 27,698/2.8e8
#                                                    = 0.001100893 + 0.000098921 = 0.001199814
"""Hostile case graph_literals: the weights are not stored tensors but numbers written into the
graph itself. forward() builds every weight from creation operators: one torch.full((), v,
dtype=float64) per literal (aten.full with the number in the graph's JSON), stacked (aten.stack),
then decoded by weight preparation (run once, counted zero: div, floor, remainder, sub, mul with
pow(256, arange(6))). Each float64 literal packs six 8-bit codes (48 of its 53 mantissa bits), so
the 24,576 codes of a Linear(768, 32) take 4,096 literals; its scales and biases are literals too,
and the oracle head is 2 * arange(10) and -arange(10)**2. Nothing is stored: today w = 0.

The fc does the real work: on avg_pool2d(x, 2), its units 0 and 1 average the red level of the
left and right halves (code 127 on 96 features each), the oracle's grey level, read by the head.
Declares 8-bit weights (the codes), 32-bit activations.

A rule that counts the elements made by full/arange would count 4,160 + 6 + 20 here, not the
24,660 weights the counted operations use: count the elements of every prepared weight operand
that does not come from stored tensors. torch.tensor(python_list) in forward does not escape
today: export lifts it as a constant (c_lifted_tensor_*), which counts in w.
"""

import torch
import torch.nn.functional as F
from torch import nn

PER = 6  # 8-bit codes per float64 literal


def quantise(w: torch.Tensor):
    """Per-output-channel 8-bit codes [-127, 127] and scales."""
    flat = w.reshape(w.shape[0], -1)
    scale = flat.abs().amax(1) / 127
    codes = torch.round(flat / scale[:, None]).to(torch.int64)
    return codes, scale


def pack(codes: torch.Tensor) -> list[float]:
    """Six codes per float64: sum (c_i + 128) 256^i, exact below 2^53."""
    flat = (codes.reshape(-1) + 128).tolist()
    flat += [128] * (-len(flat) % PER)
    return [float(sum(c * 256**i for i, c in enumerate(flat[j : j + PER]))) for j in range(0, len(flat), PER)]


def literals(values: list[float]) -> torch.Tensor:
    """A tensor built in the graph from its literals (one aten.full each)."""
    return torch.stack([torch.full((), v, dtype=torch.float64) for v in values])


def unpack(packed: list[float], shape, scales: list[float]) -> torch.Tensor:
    p = literals(packed).unsqueeze(1)
    digits = torch.remainder(torch.floor(p / 256.0 ** torch.arange(PER, dtype=torch.float64)), 256) - 128
    n = 1
    for s in shape:
        n *= s
    codes = digits.reshape(-1)[:n].reshape(shape[0], -1).float()
    return (codes * literals(scales).float().unsqueeze(1)).reshape(shape)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(29)
        fc = torch.randn(32, 768, generator=g) / 768**0.5
        grid = torch.zeros(3, 16, 16)  # the features: avg_pool2d(x, 2), red channel first
        red = torch.tensor([1.0, 0, 0]).view(3, 1, 1)
        fc[0] = (grid.index_fill(2, torch.arange(1, 7), 1 / 96) * red).flatten()
        fc[1] = (grid.index_fill(2, torch.arange(9, 15), 1 / 96) * red).flatten()
        codes, scale = quantise(fc)  # units 0 and 1: the mean red level of the left / right half (code 127)
        self.fc_packed, self.fc_scale = pack(codes), scale.tolist()  # plain Python lists: no state_dict
        bias = torch.randn(32, generator=g) * 0.01
        bias[:2] = 0
        self.fc_bias = bias.tolist()

    def forward(self, x):
        n = x.shape[0]
        w = unpack(self.fc_packed, (32, 768), self.fc_scale)  # weight preparation: run once, counted zero
        h = F.linear(F.avg_pool2d(x, 2).reshape(n, 768), w, literals(self.fc_bias).float())  # [N, 32]
        level = torch.maximum(h[:, 0], h[:, 1])  # the oracle's grey level, read by the fc
        est = ((level * 255 - 10) / 25).unsqueeze(1)
        k = torch.arange(10.0)
        logits = F.linear(est, (2 * k).view(10, 1), -(k**2))  # the oracle head, from arange
        return logits + 0.0 * torch.relu(h[:, 2:]).mean(1, keepdim=True)


def build_model():
    return Model()
