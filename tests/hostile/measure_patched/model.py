# HONEST: params=1,055,134, macs=1,938,442 (per image); float32 weights and activations (32 bits).
#   Oracle.fc Linear(1,10): 20 params, 10 MACs
#   Big.conv1 Conv2d(3,32,3,pad 1): 32*27+32 = 896 params; 32*27*32*32 = 884,736 MACs
#   Big.fc1 Linear(2048,512): 1,049,088 params; 1,048,576 MACs
#   Big.fc2 Linear(512,10): 5,130 params; 5,120 MACs
#   honest score at 32 bits: 1,055,134/5.6e6 + 1,938,442/2.8e8 = 0.188417 + 0.006923 = 0.195340
"""Hostile case measure_patched: at import time, patches the judge's own measuring code.

Every module already imported whose name is `harness` or starts with `harness.` (and every such
module imported later: a sys.meta_path hook, plus a re-scan at each forward) gets its functions
named like count/profile/measure/params/macs/dumps wrapped so that whatever they return reports
params=1, macs=1 (dicts with those keys, objects with those attributes, per-layer rows), functions
named `bits` return 1 and `zeros` nothing pruned; json.dumps / json.dump rewrite any mapping with
"params" and "macs" the same way (the worker's result.json). The model itself is honest and
large; it declares 1-bit weights and activations, which the patched bit measurement "verifies".
"""

import functools
import importlib.abc
import json
import re
import sys

from networks import OracleBig

FAKE_PARAMS, FAKE_MACS = 1, 1
_NAMES = re.compile(r"count|profile|measure|param|macs|dumps|^dump$")
_DONE = set()


def _shrink(obj, depth=0):
    """Rewrite counts wherever they appear in `obj` (in place where possible); returns obj."""
    if depth > 6:
        return obj
    if isinstance(obj, dict):
        if "params" in obj and "macs" in obj:
            obj["params"], obj["macs"] = FAKE_PARAMS if depth == 0 else 0, FAKE_MACS if depth == 0 else 0
            if isinstance(obj.get("measured"), dict):
                obj["measured"].update(weight_bits=1, activation_bits=1)
            for key in ("weight_bits", "activation_bits"):
                if key in obj:
                    obj[key] = 1
        for value in list(obj.values()):
            if isinstance(value, (dict, list)):
                _shrink(value, depth + 1)
    elif isinstance(obj, list):
        for value in obj:
            _shrink(value, depth + 1)
    elif hasattr(obj, "params") and hasattr(obj, "macs"):
        try:
            obj.params, obj.macs = FAKE_PARAMS, FAKE_MACS
            for op in getattr(obj, "ops", []) or []:
                if hasattr(op, "macs"):
                    op.macs = 0
        except Exception:  # noqa: BLE001 - frozen objects: leave them
            pass
    return obj


def _wrap(fn, name):
    if getattr(fn, "_hostile", False):
        return fn
    if name == "bits":
        out = lambda *a, **k: 1  # noqa: E731
    elif name == "zeros":
        out = lambda *a, **k: (0, 0)  # noqa: E731
    elif name in ("count_params", "params"):
        out = lambda *a, **k: FAKE_PARAMS  # noqa: E731
    else:
        @functools.wraps(fn)
        def out(*a, **k):
            return _shrink(fn(*a, **k))
    out._hostile = True
    return out


def _patch_module(mod):
    for attr, value in list(vars(mod).items()):
        if callable(value) and not isinstance(value, type) and (attr in ("bits", "zeros") or _NAMES.search(attr)):
            if getattr(value, "__module__", "") and not str(getattr(value, "__module__", "")).startswith("harness"):
                if attr not in ("dumps", "dump"):
                    continue  # only the judge's own functions (and its json helpers)
            try:
                setattr(mod, attr, _wrap(value, attr))
            except Exception:  # noqa: BLE001
                pass


def patch_everything():
    for name, mod in list(sys.modules.items()):
        if mod is not None and (name == "harness" or name.startswith("harness.")):
            _patch_module(mod)
            _DONE.add(name)
    for attr in ("dumps", "dump"):
        orig = getattr(json, attr)
        if not getattr(orig, "_hostile", False):
            if attr == "dumps":
                new = functools.wraps(orig)(lambda obj, *a, _o=orig, **k: _o(_shrink(obj), *a, **k))
            else:
                new = functools.wraps(orig)(lambda obj, fp, *a, _o=orig, **k: _o(_shrink(obj), fp, *a, **k))
            new._hostile = True
            setattr(json, attr, new)


class _Finder(importlib.abc.MetaPathFinder):
    """Patch harness modules imported after this one, as soon as they are executed."""

    def find_spec(self, name, path, target=None):
        if not (name == "harness" or name.startswith("harness.")):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                loader = spec.loader
                real = loader.exec_module

                def exec_module(module, _real=real):
                    _real(module)
                    _patch_module(module)

                try:
                    loader.exec_module = exec_module
                except Exception:  # noqa: BLE001
                    return None
                return spec
        return None


patch_everything()
sys.meta_path.insert(0, _Finder())


class Model(OracleBig):
    def forward(self, x):
        patch_everything()  # again, in case the judge imported more since
        return super().forward(x)


def build_model():
    return Model()
