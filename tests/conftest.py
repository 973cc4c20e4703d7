"""Shared fixtures: small CIFAR-10-like data in both real layouts, and submission directories."""

from __future__ import annotations

import pickle
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.data import CLASSES

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "cifar10-jpg"
PER_CLASS = 10


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """Every test decodes into a private cache, and keeps exported programs in a folder of its own: a
    test that judges a submission runs its stage 1, whichever test judged the same files before."""
    from harness.judge import programs

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    own = Path(tmp_path_factory.mktemp("programs"))
    monkeypatch.setattr(programs, "folder", lambda: own)


def class_images(per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """Images whose left half is a grey level telling the class (10 + 25 k), right half black."""
    labels = np.repeat(np.arange(10), per_class)
    images = np.zeros((len(labels), 32, 32, 3), dtype=np.uint8)
    images[:, :, :16, :] = (10 + 25 * labels).astype(np.uint8)[:, None, None, None]
    return images, labels


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray, split: str = "test") -> Path:
    """ImageFolder layout, JPEG quality 75, like the shared copy."""
    from PIL import Image

    for i, (img, y) in enumerate(zip(images, labels, strict=True)):
        folder = root / split / CLASSES[y]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:04d}.jpg", quality=75)
    return root


def write_batches(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """torchvision's cifar-10-batches-py layout (pickled dicts with bytes keys)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": labels.tolist(), b"batch_label": b"testing batch 1 of 1"}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}, f)
    return root


@pytest.fixture
def folder_data(tmp_path):
    return write_folder(tmp_path / "folder", *class_images())


@pytest.fixture
def batches_data(tmp_path):
    return write_batches(tmp_path / "batches", *class_images())


ORACLE = """
import torch
from torch import nn


class Oracle(nn.Module):
    \"\"\"Reads the grey level of the brighter image half: right on every image, flipped or not.\"\"\"

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 10)  # logits 2 k est - k^2: the argmax is the nearest k
        with torch.no_grad():
            self.fc.weight.copy_(2 * torch.arange(10.0).view(10, 1))
            self.fc.bias.copy_(-torch.arange(10.0) ** 2)

    def level(self, x):
        return torch.maximum(x[:, 0, :, 4:12].mean(dim=(1, 2)), x[:, 0, :, 20:28].mean(dim=(1, 2)))

    def forward(self, x):
        est = (self.level(x) * 255 - 10) / 25
        return self.fc(est.unsqueeze(1))


class Memoriser(Oracle):
    \"\"\"Reads the left half only: right on the test images, wrong once they are flipped.\"\"\"

    def level(self, x):
        return x[:, 0, :, 4:12].mean(dim=(1, 2))


def build_model():
    return Oracle()


def build_memoriser():
    return Memoriser()
"""


def load_scripts(monkeypatch, *paths: Path) -> list:
    """Example scripts (model.py, train.py) as modules, without leaving a trace: train.py puts
    directories first on sys.path and imports `model` / `train` by those names, which would
    otherwise shadow another example's files in later tests."""
    import importlib.util

    monkeypatch.setattr(sys, "path", list(sys.path))
    names = ("model", "train")
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    modules = []
    for i, path in enumerate(paths):
        spec = importlib.util.spec_from_file_location(f"_script_{i}_{path.parent.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    return modules


def make_submission(folder: Path, code: str, manifest: dict | None = None, factory: str = "build_model",
                    state: dict | None = None, extra: dict[str, str] | None = None) -> Path:
    """Write model.py (+ extra files), weights.pt from the factory's own state_dict, and submission.yaml."""
    import importlib.util

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(textwrap.dedent(code))
    for name, text in (extra or {}).items():
        (folder / name).write_text(textwrap.dedent(text))
    if state is None:
        sys.path.insert(0, str(folder))
        try:
            spec = importlib.util.spec_from_file_location(f"_sub_{abs(hash(str(folder)))}", folder / "model.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            state = getattr(module, factory)().state_dict()
        finally:
            sys.path.remove(str(folder))
    torch.save(state, folder / "weights.pt")
    doc = {"team": "testers", "model": {"factory": factory}}
    doc.update(manifest or {})
    (folder / "submission.yaml").write_text(yaml.safe_dump(doc))
    return folder


@pytest.fixture
def oracle(tmp_path):
    return make_submission(tmp_path / "oracle", ORACLE)


def exported(model, tmp_path: Path, name: str = "graph.pt2") -> Path:
    """Export a (trusted, test) model as stage 1 does; the archive's path."""
    from harness.export.export import export

    path = tmp_path / name
    export(model.eval(), path, submission="/nonexistent")
    return path


def measured(model, tmp_path: Path, x=None, half_weights: bool = False, half_inputs: bool = False) -> dict:
    """Export `model` and profile it with stage 2's own code (reader, graph, profile), in this process."""
    import torch

    from harness.measure import archive, graph, profile

    g = graph.Graph(archive.read(exported(model, tmp_path)), torch.device("cpu"), half_weights, half_inputs)
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)) if x is None else x
    with torch.inference_mode():
        return profile.profile(g, x)[0]


def stand_in_stages(monkeypatch, answer, params: int = 20, macs: int = 10, measured: dict | None = None,
                    on: dict | None = None) -> list:
    """Replace both stages of every evaluation by a stand-in that answers at once, so that what the
    parent alone decides (grading, checks, warnings, eligibility, exit codes, records) is tested in
    milliseconds. `answer(labels)` gives the predictions for the true labels of the images stage 2
    would see; `on` maps a check ("unseen", "private", "flip", "shift") to the answer for its images
    instead. Nothing of the submission runs. Returns the list of folders judged."""
    import numpy as np

    from harness.judge import evaluate, runner

    judged = []

    def stages(ev, private):
        judged.append(ev.folder)
        order = ev.order
        preds = np.asarray(answer(order.labels)).copy()  # in the composed order
        for name, respond in (on or {}).items():
            if name in order.parts:
                preds[order.parts[name]] = respond(order.labels[order.parts[name]])
        result = {"ok": True, "params": params, "macs": macs, "structured_mac_share": 0.0,
                  "layers": [{"layer": "fc", "op": "matmul", "params": params, "macs": macs}],
                  "measured": measured or {"weight_bits": 32, "activation_bits": 32},
                  "predictions": preds[order.perm].tolist(),
                  "device": "stand-in", "torch_version": "none", "timings": {}, "warnings": []}
        out = runner.Outcome(result=result, returncode=0, log="", seconds=0.0)
        return evaluate._outcome(ev, out)

    monkeypatch.setattr(evaluate, "_stages", stages)
    return judged
