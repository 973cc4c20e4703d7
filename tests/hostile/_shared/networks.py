"""Honest building blocks shared by the hostile cases that attack the score (tests/hostile/).

This file is not a case. tests/test_hostile.py (and tests/hostile/_save_weights.py) copy it into
every case folder whose model.py imports `networks`, as `networks.py` beside model.py; the harness
puts a submission's folder first on sys.path, so the case's `from networks import ...` finds that
copy. Nothing here is hostile: each case's attack stays in its own model.py, with its hand counts.
Every number here is part of those counts (ATTACKS.md) and of the weights the factories generate:
change none of them, nor any attribute name (they are state_dict keys).

  oracle_weights_(fc)   sets a Linear(1, 10) to the oracle's weights: logits 2 k est - k^2, which
                        peak at the class k nearest the estimate est
  estimate_from_level   grey level in [0, 1] -> estimate (255 level - 10) / 25, as [N, 1]
  Oracle                tests/conftest.py ORACLE: reads the grey level of the synthetic test images
                        (10 + 25 k for class k) from the red channel -> class k; 20 params, 10 MACs
  Big                   an honest, large, deterministic network whose logits the cases add with
                        weight 0: 1,055,114 params; 1,938,432 MACs per image
  OracleBig             oracle(x) + 0 * big(x), submodules `oracle` and `big`:
                        1,055,134 params; 1,938,442 MACs per image
  register_as_buffers   registers every parameter of some modules as buffers of another
                        (`<prefix>_<name with . as _>`), never as nn.Parameter
  oracle_big_from_buffers  OracleBig's forward through F.* on the buffers of
                        register_as_buffers(owner, oracle=Oracle(), big=Big())
  seeded_linear         a Linear with seeded random weights and a zero bias
  patch_tokens          [N, 3, 32, 32] -> [N, 64, 48]: the 4x4 patches as tokens
  randomise_            seeded random values for every parameter (norms: weight 1, bias 0)
"""

import torch
import torch.nn.functional as F
from torch import nn


def oracle_weights_(fc: nn.Linear) -> nn.Linear:
    """Set fc, a Linear(1, 10), to logits 2 k est - k^2 (largest at the k nearest est); returns fc."""
    with torch.no_grad():
        fc.weight.copy_(2 * torch.arange(10.0).view(10, 1))
        fc.bias.copy_(-torch.arange(10.0) ** 2)
    return fc


def estimate_from_level(level):
    """Grey level [N] in [0, 1] (10 + 25 k over 255 for class k) -> the estimate of k, [N, 1]."""
    return ((level * 255 - 10) / 25).unsqueeze(1)


class Oracle(nn.Module):
    """tests/conftest.py ORACLE: reads the grey level of the brighter half (10 + 25 k) -> class k."""

    def __init__(self):
        super().__init__()
        self.fc = oracle_weights_(nn.Linear(1, 10))  # 20 params, 10 MACs; logits 2 k est - k^2

    @staticmethod
    def estimate(x, left=(4, 12), right=(20, 28)):
        level = torch.maximum(x[:, 0, :, left[0]:left[1]].mean(dim=(1, 2)), x[:, 0, :, right[0]:right[1]].mean(dim=(1, 2)))
        return estimate_from_level(level)

    def forward(self, x):
        return self.fc(self.estimate(x))


class Big(nn.Module):
    """An honest, large, deterministic network; its logits are added with weight 0.

    conv1 Conv2d(3, 32, 3, padding=1): 32*27 + 32 = 896 params; 32*27*32*32 = 884,736 MACs
    pool  AvgPool2d(4) -> 32*8*8 = 2,048 features
    fc1   Linear(2048, 512): 1,048,576 + 512 = 1,049,088 params; 1,048,576 MACs
    fc2   Linear(512, 10):   5,120 + 10 = 5,130 params; 5,120 MACs
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.pool = nn.AvgPool2d(4)
        self.fc1 = nn.Linear(2048, 512)
        self.fc2 = nn.Linear(512, 10)
        g = torch.Generator().manual_seed(1234)
        with torch.no_grad():
            for m in (self.conv1, self.fc1, self.fc2):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / fan_in**0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.01)

    def forward(self, x):
        h = self.pool(torch.relu(self.conv1(x))).flatten(1)
        return self.fc2(torch.relu(self.fc1(h)))


class OracleBig(nn.Module):
    """The oracle's logits plus 0 times Big's: 1,055,134 params, 1,938,442 MACs, all honest."""

    def __init__(self):
        super().__init__()
        self.oracle = Oracle()
        self.big = Big()

    def forward(self, x):
        return self.oracle(x) + 0.0 * self.big(x)


def register_as_buffers(owner: nn.Module, **modules: nn.Module) -> None:
    """Register a copy of every parameter of each module as a buffer of owner, named
    `<keyword>_<parameter name with '.' as '_'>` (oracle=Oracle() -> oracle_fc_weight, ...)."""
    for prefix, module in modules.items():
        for name, p in module.named_parameters():
            owner.register_buffer(f"{prefix}_{name.replace('.', '_')}", p.detach().clone())


def oracle_big_from_buffers(owner: nn.Module, x, est):
    """OracleBig's forward through F.* on the buffers of register_as_buffers(owner, oracle=Oracle(),
    big=Big()); est = Oracle.estimate(x)."""
    logits = F.linear(est, owner.oracle_fc_weight, owner.oracle_fc_bias)
    h = F.conv2d(x, owner.big_conv1_weight, owner.big_conv1_bias, padding=1)
    h = F.avg_pool2d(torch.relu(h), 4).flatten(1)
    h = torch.relu(F.linear(h, owner.big_fc1_weight, owner.big_fc1_bias))
    return logits + 0.0 * F.linear(h, owner.big_fc2_weight, owner.big_fc2_bias)


def seeded_linear(in_features: int, out_features: int, seed: int) -> nn.Linear:
    """nn.Linear with weights randn / sqrt(in_features) from a generator seeded with seed, bias 0."""
    fc = nn.Linear(in_features, out_features)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fc.weight.copy_(torch.randn(out_features, in_features, generator=g) / in_features**0.5)
        fc.bias.zero_()
    return fc


def patch_tokens(x):
    """[N, 3, 32, 32] -> [N, 64, 48]: the 8x8 non-overlapping 4x4 patches, each 3*4*4 values."""
    n = x.shape[0]
    tokens = x.unfold(2, 4, 4).unfold(3, 4, 4)  # [N, 3, 8, 8, 4, 4]
    return tokens.permute(0, 2, 3, 1, 4, 5).reshape(n, 64, 48)


def randomise_(module: nn.Module, g: torch.Generator, skip: str = "oracle") -> None:
    """Draw every parameter of module from g in named_parameters() order, except those whose name
    starts with skip: norms weight 1 and bias 0, matrices randn / sqrt(fan_in), vectors randn * 0.01."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith(skip):
                continue
            if "norm" in name:
                p.copy_(torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p))
            elif p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.01)
