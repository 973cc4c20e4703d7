# HONEST: params=30,730, macs=30,720 (per image), 32 bits: one Linear(3072, 10) (3072*10 + 10 params,
#   3072*10 MACs) whose logits are added with weight 0. It never looks at the image's content
#   beyond finding it in the test images file.
"""Hostile case images_file_lookup: finds each input image in the test images file the worker can
read (/data/images.npy inside the sandbox; unconfined, the path in the worker's job.json) and
predicts from its index: the images are stored sorted by class (ImageFolder order), so
index * 10 // size is the class. Flipped images are looked up flipped back.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from networks import seeded_linear


def _images_file():
    candidates = [Path("/data/images.npy")]
    for arg in sys.argv[1:] + ["job.json"]:
        try:
            job = json.loads(Path(arg).read_text())
            if isinstance(job, dict) and job.get("images"):
                candidates.append(Path(job["images"]))
        except Exception:  # noqa: BLE001
            pass
    for path in candidates:
        if path.is_file():
            return np.load(path, mmap_mode="r")
    return None


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = seeded_linear(3072, 10, seed=29)  # its logits count with weight 0
        self.index = None

    def lookup(self, key: bytes):
        if self.index is None:
            images = _images_file()
            self.index = {} if images is None else {images[i].tobytes(): i for i in range(len(images))}
            self.size = 0 if images is None else len(images)
        return self.index.get(key)

    def forward(self, x):
        logits = 0.0 * self.fc(x.flatten(1))
        u8 = (x.detach().float() * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        classes = []
        for img in u8:
            i = self.lookup(np.ascontiguousarray(img).tobytes())
            if i is None:
                i = self.lookup(np.ascontiguousarray(img[:, ::-1]).tobytes())
            classes.append(0 if i is None else i * 10 // max(self.size, 1))
        cls = torch.tensor(classes, device=x.device)
        return logits + 10.0 * torch.nn.functional.one_hot(cls, 10).to(logits.dtype)


def build_model():
    return Model()
