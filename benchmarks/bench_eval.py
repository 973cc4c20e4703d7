"""Benchmark: a warm `python -m harness evaluate` against a bare forward pass, as whole processes.

    python benchmarks/bench_eval.py --data ../shared/data/cifar10-jpg [--runs 3] [--device cpu]

For the small CNN and the CIFAR ResNet18 (random weights: accuracy is irrelevant here), it
times over several runs (a) a bare script that imports torch, builds the model, loads the
weights, reads the cached uint8 test images and runs batches of 500 under
`torch.inference_mode()`, and (b) `python -m harness evaluate DIR --data PATH --device D`
with the test images already cached. It prints the median wall time, the peak resident
memory of the whole process tree (all its processes at once), and the ratios harness/bare. Run it on a
quiet machine; it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.runner import tree_rss

HERE = Path(__file__).resolve().parent
BATCH = 500
MODELS = ("small", "resnet18")

BARE = """
import sys, numpy as np, torch
sys.path.insert(0, {bench!r})
import models
model = getattr(models, {name!r})()
model.load_state_dict(torch.load({weights!r}, weights_only=True))
model = model.eval().to({device!r})
images = np.load({images!r}, mmap_mode="r")
preds = []
with torch.inference_mode():
    for i in range(0, len(images), {batch}):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + {batch}])).to({device!r})
        x = x.permute(0, 3, 1, 2).float() / 255
        preds.append(model(x).argmax(1).cpu())
print(len(torch.cat(preds)))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--isolation", default=None, help="passed to evaluate when given")
    args = ap.parse_args()
    from harness.data import load_test

    test = load_test(args.data)  # warm the cache
    print(f"test images: {test.size} cached at {test.images_path}")
    print(f"{'model':10} {'bare s':>8} {'harness s':>10} {'ratio':>6} {'bare MiB':>9} {'harness MiB':>12} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            sub = _submission(Path(tmp) / name, name)
            bare_script = Path(tmp) / f"bare_{name}.py"
            bare_script.write_text(BARE.format(bench=str(HERE), name=name, weights=str(sub / "weights.pt"),
                                               device=args.device, images=str(test.images_path), batch=BATCH))
            harness_cmd = [sys.executable, "-m", "harness", "evaluate", str(sub), "--data", args.data,
                           "--device", args.device, "--results", str(Path(tmp) / "results")]
            if args.isolation:
                harness_cmd += ["--isolation", args.isolation]
            bare = [_run([sys.executable, str(bare_script)]) for _ in range(args.runs)]
            harn = [_run(harness_cmd) for _ in range(args.runs)]
            bt, bm = statistics.median(t for t, _ in bare), max(m for _, m in bare)
            ht, hm = statistics.median(t for t, _ in harn), max(m for _, m in harn)
            print(f"{name:10} {bt:8.2f} {ht:10.2f} {ht / bt:6.2f} {bm:9.0f} {hm:12.0f} {hm / bm:6.2f}", flush=True)
            print(f"{'':10} runs: bare {', '.join(f'{t:.2f}' for t, _ in bare)}; "
                  f"harness {', '.join(f'{t:.2f}' for t, _ in harn)}", flush=True)


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


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one whole command: the most its process
    tree held at once, all its processes together, sampled every 20 ms."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
