# HONEST: params=1,055,134, macs=1,938,442 (per image); float32 weights and activations (32 bits).
#   Oracle.fc Linear(1,10): 20 params, 10 MACs
#   Big.conv1 Conv2d(3,32,3,pad 1): 32*27+32 = 896 params; 32*27*32*32 = 884,736 MACs
#   Big.fc1 Linear(2048,512): 1,049,088 params; 1,048,576 MACs
#   Big.fc2 Linear(512,10): 5,130 params; 5,120 MACs
#   honest score at 32 bits: 1,055,134/5.6e6 + 1,938,442/2.8e8 = 0.188417 + 0.006923 = 0.195340
"""Hostile case dispatch_escape_c: the whole forward runs under torch._C._DisableTorchDispatch(),
which excludes the Python dispatch keys, so __torch_dispatch__ (modes and subclasses) is skipped.
"""

import torch

from networks import OracleBig


class Model(OracleBig):
    def forward(self, x):
        with torch._C._DisableTorchDispatch():
            return super().forward(x)


def build_model():
    return Model()
