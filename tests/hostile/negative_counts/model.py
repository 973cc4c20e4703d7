# HONEST: params=1,055,134, macs=1,938,442 (per image); float32 weights and activations (32 bits).
#   Oracle.fc Linear(1,10): 20 params, 10 MACs
#   Big.conv1 Conv2d(3,32,3,pad 1): 32*27+32 = 896 params; 32*27*32*32 = 884,736 MACs
#   Big.fc1 Linear(2048,512): 1,049,088 params; 1,048,576 MACs
#   Big.fc2 Linear(512,10): 5,130 params; 5,120 MACs
#   honest score at 32 bits: 1,055,134/5.6e6 + 1,938,442/2.8e8 = 0.188417 + 0.006923 = 0.195340
"""Hostile case negative_counts: json.dumps / json.dump in the worker process rewrite any mapping
holding "params" and "macs" to params=-5,000,000 and macs=-1, so the result the worker sends the
parent (result.json) carries negative counts and the score goes negative (lower is better).
The model is honest and declares 32 bits.
"""

import functools
import json

from networks import OracleBig


def _negate(obj):
    if isinstance(obj, dict) and "params" in obj and "macs" in obj:
        obj = {**obj, "params": -5_000_000, "macs": -1}
    return obj


_dumps, _dump = json.dumps, json.dump
json.dumps = functools.wraps(_dumps)(lambda obj, *a, **k: _dumps(_negate(obj), *a, **k))
json.dump = functools.wraps(_dump)(lambda obj, fp, *a, **k: _dump(_negate(obj), fp, *a, **k))


class Model(OracleBig):
    """The honest Oracle + 0 * Big: the attack is the json patch above."""


def build_model():
    return Model()
