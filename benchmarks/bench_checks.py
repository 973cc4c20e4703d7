"""Benchmark: what the checks against memorised test images add to an evaluation's time.

    python benchmarks/bench_checks.py --data ../shared/data/cifar10-jpg [--private PATH] [--runs 2]
        [--submissions submissions/baseline-cnn ...]

For each submission it times whole `python -m harness evaluate` processes (test images cached,
`--isolation` as configured), alternating the settings within each run:

  none     no check images: the 10,000 test images alone (unseen_images, flip_images, shift_images 0)
  default  the bundled rules: 1,000 training images, 250 mirrored and 250 shifted test images
  private  the bundled rules and --private PATH (1,000 of its images drawn, `private_images`)

It prints the median wall time of each, the seconds stage 2 spent predicting (the record's
`timings.inference`) and the ratio of each to `none`. Run it on a quiet machine; it is not part
of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

NONE = {"unseen_images": 0, "flip_images": 0, "shift_images": 0}


def run(submission: Path, data: str, config: Path | None, private: str | None, results: Path) -> tuple[float, float]:
    argv = [sys.executable, "-m", "harness", "evaluate", str(submission), "--data", data, "--results", str(results),
            "--json"]
    if config is not None:
        argv += ["--config", str(config)]
    if private:
        argv += ["--private-data", private]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    rec = json.loads(done.stdout)
    if rec["status"] != "ok":
        raise SystemExit(f"{submission}: {rec['errors']}")
    return wall, rec["timings"].get("inference", 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--private", help="a folder of private images (ImageFolder) for the third setting")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--submissions", nargs="+", default=["submissions/baseline-cnn"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        none = Path(tmp) / "none.yaml"
        none.write_text(yaml.safe_dump(NONE))
        settings = {"none": (none, None), "default": (None, None)}
        if args.private:
            settings["private"] = (None, args.private)
        for sub in map(Path, args.submissions):
            times: dict[str, list[tuple[float, float]]] = {k: [] for k in settings}
            run(sub, args.data, none, None, Path(tmp) / "warm")  # caches the test and training images
            for _ in range(args.runs):
                for name, (config, private) in settings.items():
                    times[name].append(run(sub, args.data, config, private, Path(tmp) / name))
            base = statistics.median(w for w, _ in times["none"])
            print(f"{sub.name}:")
            for name, rows in times.items():
                wall, infer = statistics.median(w for w, _ in rows), statistics.median(i for _, i in rows)
                print(f"  {name:8} wall {wall:7.1f} s  predicting {infer:6.1f} s  x{wall / base:.3f} of none")


if __name__ == "__main__":
    main()
