"""Writes its own result.json into the worker's output folder, with garbage in it, and exits at once."""

import json
import os
import sys
from pathlib import Path


def build_model():
    job = json.loads(Path(sys.argv[1]).read_text())
    forged = {"ok": True, "params": "very few", "macs": -1, "uncounted": 3, "layers": "none",
              "measured": {"weight_bits": "one"}, "predictions": "all right"}
    (Path(job["out"]) / "result.json").write_text(json.dumps(forged))
    os._exit(0)
