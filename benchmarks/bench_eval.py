"""Benchmark: a warm `python -m harness evaluate` against the best plain script, as whole processes.

    python benchmarks/bench_eval.py --data ../shared/data/cifar10-jpg [--runs 3] [--device cpu]
        [--models small resnet18] [--submissions submissions/baseline-cnn ...]

For each model (the small CNN and the CIFAR ResNet18 of benchmarks/models.py, random weights)
and each submission directory given, it times over several runs, alternating the two:

(a) the bare script a careful engineer would write: imports torch, builds the model, loads the
    weights, stores them channels_last, reads the cached uint8 test images and runs batches of
    250 (channels_last input) under `torch.inference_mode()`, with the worker's allocator
    settings (`harness.judge.sandbox.WORKER_ENV`);
(b) `python -m harness evaluate DIR --data PATH --device D` with the test images cached: both
    stages, the sandbox, counting, bits, the checks' images, the record.

It prints the median wall time, the peak resident memory of the whole process tree (all its
processes at once), the ratios harness/bare, and the harness's fixed cost per submission
(its wall time less the seconds stage 2 spent predicting). Run it on a quiet machine; it is
not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.judge import procs
from harness.judge.sandbox import WORKER_ENV

HERE = Path(__file__).resolve().parent
BATCH = 250
MODELS = ("small", "resnet18")

BARE = """
import importlib.util, sys, numpy as np, torch
spec = importlib.util.spec_from_file_location("model", {code!r})
module = importlib.util.module_from_spec(spec)
sys.path.insert(0, {folder!r})
spec.loader.exec_module(module)
model = getattr(module, {factory!r})()
model.load_state_dict(torch.load({weights!r}, weights_only=True))
model = model.eval().to({device!r}).to(memory_format=torch.channels_last)
mean = torch.tensor({mean!r}, device={device!r}).view(1, 3, 1, 1)
std = torch.tensor({std!r}, device={device!r}).view(1, 3, 1, 1)
images = np.load({images!r}, mmap_mode="r")
preds = []
with torch.inference_mode():
    for i in range(0, len(images), {batch}):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + {batch}])).to({device!r})
        x = ((x.permute(0, 3, 1, 2).float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)
        preds.append(model(x).argmax(1).cpu())
print(len(torch.cat(preds)))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    ap.add_argument("--submissions", nargs="*", default=[], metavar="DIR", help="example submissions to time too")
    ap.add_argument("--isolation", default=None, help="passed to evaluate when given")
    args = ap.parse_args()
    from harness.data import load_test

    test = load_test(args.data)  # warm the cache
    print(f"test images: {test.size} cached at {test.images_path}")
    print(f"{'model':18} {'bare s':>7} {'harness s':>9} {'ratio':>6} {'bare MiB':>8} {'harness MiB':>11} {'ratio':>6}"
          f" {'fixed s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        subs = [(name, _submission(Path(tmp) / name, name)) for name in args.models]
        subs += [(Path(d).name, Path(d).resolve()) for d in args.submissions]
        for name, sub in subs:
            bare_script = Path(tmp) / f"bare_{name}.py"
            bare_script.write_text(_bare(sub, args.device, str(test.images_path)))
            results = Path(tmp) / f"results-{name}"
            harness_cmd = [sys.executable, "-m", "harness", "evaluate", str(sub), "--data", args.data,
                           "--device", args.device, "--results", str(results)]
            if args.isolation:
                harness_cmd += ["--isolation", args.isolation]
            bare, harn = [], []
            for _ in range(args.runs):  # alternate, so that background load affects both alike
                bare.append(_run([sys.executable, str(bare_script)]))
                harn.append(_run(harness_cmd))
            inference = [json.loads(f.read_text())["timings"].get("inference", 0.0)
                         for f in sorted(results.glob("*.json"))]
            bt, bm = statistics.median(t for t, _ in bare), max(m for _, m in bare)
            ht, hm = statistics.median(t for t, _ in harn), max(m for _, m in harn)
            fixed = statistics.median(t - i for (t, _), i in zip(harn, inference, strict=True))
            print(f"{name:18} {bt:7.2f} {ht:9.2f} {ht / bt:6.2f} {bm:8.0f} {hm:11.0f} {hm / bm:6.2f} {fixed:7.2f}",
                  flush=True)
            print(f"{'':18} runs: bare {', '.join(f'{t:.2f}' for t, _ in bare)}; "
                  f"harness {', '.join(f'{t:.2f}' for t, _ in harn)}", flush=True)


def _bare(sub: Path, device: str, images: str) -> str:
    import yaml

    manifest = yaml.safe_load((sub / "submission.yaml").read_text())
    model = manifest.get("model") or {}
    norm = model.get("normalize") or {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    return BARE.format(code=str(sub / model.get("code", "model.py")), folder=str(sub),
                       factory=model.get("factory", "build_model"),
                       weights=str(sub / model.get("weights", "weights.pt")),
                       device=device, mean=norm["mean"], std=norm["std"], images=images, batch=BATCH)


def _submission(folder: Path, name: str) -> Path:
    import torch

    sys.path.insert(0, str(HERE))
    import models

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(getattr(models, name)().state_dict(), folder / "weights.pt")
    (folder / "model.py").write_text((HERE / "models.py").read_text())
    (folder / "submission.yaml").write_text(f"team: bench\nname: {name}\nmodel: {{factory: {name}}}\n")
    return folder


def tree_rss(root: int) -> int:
    """Resident bytes of process `root` and all its descendants now (0 once it is gone)."""
    return sum(row.rss for row in procs.descendants(procs.scan(), [root]).values())


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one whole command: the most its process
    tree held at once, all its processes together, sampled every 20 ms."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **WORKER_ENV})
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1: evaluated but not eligible (random weights)
        raise SystemExit(f"{' '.join(cmd)} failed with status {proc.returncode}")
    return seconds, peak / 2**20


if __name__ == "__main__":
    main()
