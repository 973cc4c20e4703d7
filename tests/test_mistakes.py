"""The mistakes of a student trial, each made for real in a tiny submission and judged: the record's
error names the problem and says what to change. Also the judge's environment: what a submission's
code may import, and weights in .safetensors."""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.utils.prune  # noqa: F401 - torch.nn.utils.prune.* below
import yaml
from torch import nn

from harness.errors import SubmissionError
from harness.export import export, imports, loader

from .conftest import REPO

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:Please use quant_min:UserWarning",
                                            "ignore:torch.quantize_per_tensor:UserWarning")

NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))
"""
PLAIN = NET + """

def build_model():
    return Net()
"""


def write(folder: Path, code: str, weights=None, manifest: dict | None = None, name: str = "weights.pt") -> Path:
    """A submission: model.py, the weights `weights(module)` makes from its code (default: the
    factory's own state_dict), submission.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(textwrap.dedent(code))
    spec = importlib.util.spec_from_file_location(f"_mistake_{abs(hash(str(folder)))}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    state = weights(module) if weights is not None else module.build_model().state_dict()
    if name.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(state, folder / name)
    else:
        torch.save(state, folder / name)
    doc = {"team": "students", **(manifest or {})}
    (folder / "submission.yaml").write_text(yaml.safe_dump(doc))
    return folder


def judged(folder: Path, status: str = "invalid") -> str:
    """The one error of the record of `profile` (no data, no sandbox); '' for an ok record."""
    from harness.config import load_rules, with_overrides
    from harness.judge.evaluate import judge

    rec = judge(folder, None, with_overrides(load_rules(), isolation="none"), "cpu")
    assert rec.status == status, rec.errors
    assert len(rec.errors) == (status != "ok"), rec.errors
    return rec.errors[0] if rec.errors else ""


def ao_way(error: str) -> None:
    assert "The judge does not run torch.ao's quantized kernels" in error
    assert "float weights on a grid of 2^b levels" in error and "brevitas" in error
    assert "declare weight_bits/activation_bits" in error and "entries that are not tensors" not in error


# 1. torch.ao post-training quantisation ----------------------------------------------------------

def _dynamic(module):
    return torch.ao.quantization.quantize_dynamic(module.Net(), {nn.Linear}, dtype=torch.qint8).state_dict()


def _static(module):
    model = nn.Sequential(torch.ao.quantization.QuantStub(), module.Net(), torch.ao.quantization.DeQuantStub())
    model.eval().qconfig = torch.ao.quantization.get_default_qconfig("x86")
    torch.ao.quantization.prepare(model, inplace=True)
    model(torch.rand(8, 3, 32, 32))
    return torch.ao.quantization.convert(model).state_dict()


@pytest.mark.parametrize("quantise", [_dynamic, _static], ids=["quantize_dynamic", "prepare-convert"])
def test_torch_ao_post_training_quantised_weights_get_the_way_to_fake_quantisation(tmp_path, quantise):
    error = judged(write(tmp_path / "s", PLAIN, quantise))
    assert re.search(r"weights\.pt: holds torch\.ao quantized weights \([^)]*_packed_params", error), error
    ao_way(error)


def test_a_factory_that_converts_with_torch_ao_gets_the_same_way_whatever_the_weights(tmp_path):
    code = PLAIN.replace("    return Net()", "    return torch.ao.quantization.quantize_dynamic(Net(), {nn.Linear})")
    with pytest.raises(SubmissionError, match="uses torch.ao quantized modules") as caught:
        loader.build(write(tmp_path, code, lambda m: m.Net().state_dict()), "model.py", "build_model", "weights.pt")
    ao_way(str(caught.value))


# 2. torch.ao quantisation-aware training left in the model --------------------------------------

QAT = NET + """

def build_model():
    model = Net().train()
    model.qconfig = torch.ao.quantization.get_default_qat_qconfig("x86")
    torch.ao.quantization.prepare_qat(model, inplace=True)
    return model
"""


def _trained(module):
    model = module.build_model()
    model(torch.rand(8, 3, 32, 32))  # the observers see data, as in training
    return model.state_dict()


def test_torch_ao_qat_names_the_buffers_it_updates_and_how_to_freeze_it(tmp_path):
    error = judged(write(tmp_path / "s", QAT, _trained))
    changed = re.search(r"the model changes (\d+) of its buffers when it runs \((.*?) and (\d+) more\)", error)
    assert changed, error
    assert int(changed[3]) == int(changed[1]) - 3 and "conv.weight_fake_quant.scale" in changed[2]
    assert "observers and fake quantisers (prepare_qat)" in error and "not even with observers disabled" in error
    assert "Freeze the quantisation before saving" in error and "brevitas" in error


def test_any_buffer_a_forward_updates_is_named(tmp_path):
    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3072, 10)
            self.register_buffer("calls", torch.zeros(()))

        def forward(self, x):
            self.calls += 1
            return self.fc(x.flatten(1))

    with pytest.raises(SubmissionError, match=r"changes 1 of its buffers when it runs \(calls\).*"
                                              r"without updating a buffer"):
        export.export(Counting().eval(), tmp_path / "g.pt2", "/nonexistent")

    class Scaling(Counting):
        def forward(self, x):
            x.mul_(2)
            return self.fc(x.flatten(1))

    with pytest.raises(SubmissionError, match=r"writes into its input images in place .*compute a new tensor"):
        export.export(Scaling().eval(), tmp_path / "g.pt2", "/nonexistent")


# 3. torch.nn.utils.prune's reparametrisation in the weights -------------------------------------

def _pruned(module):
    model = module.Net()
    torch.nn.utils.prune.l1_unstructured(model.fc, "weight", 0.5)
    return model.state_dict()


def test_weights_saved_with_prune_reparametrisation_get_prune_remove(tmp_path):
    error = judged(write(tmp_path / "s", PLAIN, _pruned))
    assert "unexpected keys: fc.weight_orig, fc.weight_mask" in error
    assert "keep torch.nn.utils.prune's reparametrisation of fc.weight (weight_orig and weight_mask)" in error
    assert "call torch.nn.utils.prune.remove(module, 'weight') on each pruned module before saving" in error


def test_a_factory_that_prunes_weights_saved_after_prune_remove_is_told_so(tmp_path):
    code = PLAIN.replace("    return Net()", "    m = Net()\n    torch.nn.utils.prune.identity(m.fc, 'weight')\n"
                                               "    return m").replace("import torch\n", "import torch\n"
                                                                                      "import torch.nn.utils.prune\n")
    folder = write(tmp_path, code, lambda m: m.Net().state_dict())
    with pytest.raises(SubmissionError, match=r"The factory prunes fc\.weight with torch\.nn\.utils\.prune, but the "
                                              r"weights were saved after prune\.remove"):
        loader.build(folder, "model.py", "build_model", "weights.pt")


# 4 and 5. torch.compile ---------------------------------------------------------------------------

def test_weights_of_a_compiled_model_get_the_way_to_strip_orig_mod(tmp_path):
    error = judged(write(tmp_path / "s", PLAIN, lambda m: torch.compile(m.Net()).state_dict()))
    assert "unexpected keys: _orig_mod.conv.weight" in error
    assert "Every key carries the '_orig_mod.' prefix of a torch.compile'd model: save model._orig_mod.state_dict()" \
        in error


def test_a_factory_that_returns_a_compiled_module_is_told_to_return_the_plain_one(tmp_path):
    code = PLAIN.replace("    return Net()", "    return torch.compile(Net())")
    error = judged(write(tmp_path / "s", code, lambda m: m.Net().state_dict()))
    assert "build_model() returned a torch.compile'd module (OptimizedModule around Net)" in error
    assert "return the plain module" in error and "missing keys" not in error


# 6. relative paths ----------------------------------------------------------------------------------

def test_a_relative_path_in_the_factory_gets_path_of_file_parent(tmp_path):
    code = PLAIN.replace("    return Net()", "    classes = open('classes.txt').read().split()\n"
                                               "    return Net()")
    folder = write(tmp_path / "s", code, lambda m: m.Net().state_dict())
    (folder / "classes.txt").write_text("airplane automobile bird cat deer dog frog horse ship truck\n")
    error = judged(folder, status="error")
    assert "No such file or directory: 'classes.txt' at model.py:" in error
    assert "A relative path ('classes.txt') is read from the current directory, which is not your submission's " \
           "folder" in error
    assert "build paths from the folder of your code, Path(__file__).parent / 'classes.txt'" in error


def test_torch_load_of_the_weights_in_the_factory_is_told_the_judge_loads_them(tmp_path, monkeypatch):
    code = PLAIN.replace("    return Net()", "    m = Net()\n    m.load_state_dict(torch.load('weights.pt'))\n"
                                               "    return m")
    folder = write(tmp_path / "s", code, lambda m: m.Net().state_dict())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception, match=r"Path\(__file__\)\.parent / 'weights\.pt' \(the judge loads weights\.pt "
                                        r"into the model itself"):
        loader.build(folder, "model.py", "build_model", "weights.pt")


# 7. float16 weights -------------------------------------------------------------------------------

def test_a_half_model_is_told_to_stay_float32_and_declare_16_bits(tmp_path):
    code = PLAIN.replace("    return Net()", "    return Net().half()")
    error = judged(write(tmp_path / "s", code))
    assert "its weights are float16 (conv.weight, conv.bias, fc.weight and 1 more) and the judge feeds float32 " \
           "images" in error
    assert "Keep the model float32 (no .half() or .to(float16)) and declare weight_bits: 16: the judge rounds the " \
           "weights to float16 itself, so the claim verifies" in error
    assert "must be traceable" not in error


# 8. more than the logits --------------------------------------------------------------------------

def test_a_tuple_output_is_described_and_the_logits_asked_for(tmp_path):
    code = PLAIN.replace("return self.fc(torch.relu(self.conv(x)).mean((2, 3)))",
                         "features = torch.relu(self.conv(x)).mean((2, 3))\n        return self.fc(features), features")
    error = judged(write(tmp_path / "s", code))
    assert error == ("the model returns a tuple of 2: Tensor[N, 10], Tensor[N, 8]; it must return the logits alone, "
                     "one tensor of shape [N, 10] (N the batch size): return logits, not logits and anything else")


def test_a_dict_output_names_its_keys(tmp_path):
    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3072, 10)

        def forward(self, x):
            return {"logits": self.fc(x.flatten(1)), "flat": x.flatten(1)}

    with pytest.raises(SubmissionError, match=r"returns a dict of 2: 'logits': Tensor\[N, 10\], 'flat': "
                                              r"Tensor\[N, 3072\]; it must return the logits alone"):
        export.export(Both().eval(), tmp_path / "g.pt2", "/nonexistent")


# The judge's environment: imports ---------------------------------------------------------------

def _fake_timm(tmp_path: Path, monkeypatch) -> None:
    """A package named timm, importable here and in stage 1 (isolation none passes PYTHONPATH on)."""
    site = tmp_path / "site"
    (site / "timm").mkdir(parents=True)
    (site / "timm" / "__init__.py").write_text("def create_model(name):\n    raise RuntimeError('never called')\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.syspath_prepend(str(site))


def test_a_package_the_judge_does_not_provide_is_refused_even_where_it_is_installed(tmp_path, monkeypatch):
    _fake_timm(tmp_path, monkeypatch)
    error = judged(write(tmp_path / "s", PLAIN.replace("import torch\n", "import torch\nimport timm\n", 1)))
    assert error == ("model.py:3 imports timm, which the judge does not provide; it provides torch, torchvision, "
                     "brevitas, numpy and the Python standard library. Ship the code you need as .py files in your "
                     "submission's folder, or write it with torch (submissions/README.md, 'What the judge's "
                     "environment provides')")


def test_only_the_submissions_own_imports_are_checked(tmp_path, monkeypatch):
    """Its own modules, the standard library and the provided packages import (torch's own imports of
    other packages too); a fallback on ImportError runs as where the package is absent; a sibling's
    import of an unprovided package is named with the sibling's file and line."""
    import builtins

    _fake_timm(tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    original = builtins.__import__
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "helper.py").write_text("import json\nimport numpy\n\ntry:\n    import timm\nexcept ImportError:\n"
                                      "    timm = None\n\n\ndef make():\n    import timm  # noqa\n")
    code = PLAIN.replace("import torch\n", "import importlib\nimport torch\nimport helper\n", 1).replace(
        "    return Net()", "    assert helper.timm is None and importlib.import_module('json')\n    return Net()")
    write(folder, code, lambda m: m.Net().state_dict())
    sys.modules.pop("helper")
    model = loader.build(folder, "model.py", "build_model", "weights.pt")
    export.export(model, tmp_path / "g.pt2", str(folder))  # export imports more of torch: untouched
    sys.modules.pop("helper")
    (folder / "model.py").write_text(code.replace("    assert helper", "    helper.make()\n    assert helper"))
    with pytest.raises(SubmissionError, match=r"^helper\.py:11 imports timm, which the judge does not provide"):
        loader.build(folder, "model.py", "build_model", "weights.pt")
    assert builtins.__import__ is original


def test_the_provided_packages_are_locked_and_written_down():
    lock = (REPO / "requirements" / "lock.txt").read_text()
    readme = (REPO / "submissions" / "README.md").read_text()
    section = readme[readme.index("## What the judge's environment provides"):]
    section = section[: section.index("\n## ", 4)]
    torch_version = re.search(r"^torch==(\S+)", lock, re.M)[1]
    assert f"torch {torch_version}" in section and "provenance" in section
    for name in imports.PROVIDED:
        assert re.search(rf"^{name}==", lock, re.M), name
        assert f"`{name}`" in section, name
    assert "safetensors" in section and re.search(r"^safetensors==", lock, re.M)
    assert "safetensors" in (REPO / "pyproject.toml").read_text()


# The judge's environment: weights in .safetensors --------------------------------------------------

def test_weights_in_safetensors_load(tmp_path):
    folder = write(tmp_path / "s", PLAIN, name="weights.safetensors",
                   manifest={"model": {"weights": "weights.safetensors"}})
    assert judged(folder, status="ok") == ""
    (folder / "weights.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(SubmissionError, match=r"refused to load with safetensors\.torch\.load_file: .*"
                                              r"safetensors\.torch\.save_file\(model\.state_dict\(\)"):
        loader.build(folder, "model.py", "build_model", "weights.safetensors")
