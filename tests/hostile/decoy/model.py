# HONEST: params=1,055,134 (as buffers) + 1 toy parameter = 1,055,135, macs=1,938,442 (per image); float32 weights and activations (32 bits).
#   Oracle.fc Linear(1,10): 20 params, 10 MACs
#   Big.conv1 Conv2d(3,32,3,pad 1): 32*27+32 = 896 params; 32*27*32*32 = 884,736 MACs
#   Big.fc1 Linear(2048,512): 1,049,088 params; 1,048,576 MACs
#   Big.fc2 Linear(512,10): 5,130 params; 5,120 MACs
#   honest score at 32 bits: 1,055,134/5.6e6 + 1,938,442/2.8e8 = 0.188417 + 0.006923 = 0.195340
#   while measured, the toy runs: 1 param, 1 MAC, 1-bit weight; declared 1/1 bits
"""Hostile case decoy: forward asks whether it is being measured and then runs a 1-parameter toy;
otherwise (the prediction passes) it runs the real large network. The real weights are buffers
(a counter of parameters only sees the toy's 1 parameter).

Signs of being measured: a non-empty TorchDispatchMode stack, grad mode on outside inference
mode (the judge's profile ran under torch.no_grad, its predictions under inference_mode), a batch
of exactly 16 images (the probe batch), torch.compiler.is_compiling()/is_exporting(), fake or
meta tensors, a tensor subclass as input, an active profiler or any other TorchFunctionMode.
"""

import torch
import torch.nn.functional as F
from torch import nn

from networks import Big, Oracle, oracle_big_from_buffers, register_as_buffers


def being_measured(x) -> bool:
    signs = []
    try:
        signs.append(torch._C._len_torch_dispatch_stack() > 0)
    except Exception:  # noqa: BLE001
        pass
    try:
        from torch.overrides import _get_current_function_mode_stack
        signs.append(len(_get_current_function_mode_stack()) > 0)
    except Exception:  # noqa: BLE001
        pass
    signs.append(not torch.is_inference_mode_enabled())
    signs.append(x.shape[0] == 16)
    signs.append(type(x) is not torch.Tensor or x.device.type == "meta")
    try:
        signs.append(bool(torch.compiler.is_compiling()) or bool(torch.compiler.is_exporting()))
    except Exception:  # noqa: BLE001
        pass
    try:
        from torch._subclasses.fake_tensor import is_fake
        signs.append(is_fake(x))
    except Exception:  # noqa: BLE001
        pass
    try:
        signs.append(torch.autograd.profiler._is_profiler_enabled)
    except Exception:  # noqa: BLE001
        pass
    return any(signs)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.toy = nn.Parameter(torch.ones(1, 1))  # the decoy: 1 parameter, 1-bit, 1 MAC
        register_as_buffers(self, oracle=Oracle(), big=Big())  # the real network, as buffers
        self.register_buffer("k", torch.arange(10.0))

    def forward(self, x):
        est = Oracle.estimate(x)
        if being_measured(x):
            s = F.linear(est, self.toy)  # [N, 1]: 1 MAC per image
            return 2 * s * self.k - self.k**2  # same logits as the oracle, with no layer
        return oracle_big_from_buffers(self, x, est)


def build_model():
    return Model()
