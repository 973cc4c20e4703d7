# HONEST: params=1,055,134 (all of them registered as buffers), macs=1,938,442 (per image); float32 weights and activations (32 bits).
#   Oracle.fc Linear(1,10): 20 params, 10 MACs
#   Big.conv1 Conv2d(3,32,3,pad 1): 32*27+32 = 896 params; 32*27*32*32 = 884,736 MACs
#   Big.fc1 Linear(2048,512): 1,049,088 params; 1,048,576 MACs
#   Big.fc2 Linear(512,10): 5,130 params; 5,120 MACs
#   honest score at 32 bits: 1,055,134/5.6e6 + 1,938,442/2.8e8 = 0.188417 + 0.006923 = 0.195340
"""Hostile case params_as_buffers: the honest large network, but every weight and bias is a
buffer (register_buffer), never an nn.Parameter, used through F.linear / F.conv2d: a counter of
model.parameters() sees w = 0. The weights still travel in the state_dict (buffers are saved).
"""

from torch import nn

from networks import Big, Oracle, oracle_big_from_buffers, register_as_buffers


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        register_as_buffers(self, oracle=Oracle(), big=Big())  # not one nn.Parameter

    def forward(self, x):
        return oracle_big_from_buffers(self, x, Oracle.estimate(x))


def build_model():
    return Model()
