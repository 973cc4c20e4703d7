"""Benchmark: a batch of ten submissions with `evaluate --jobs 1` and `--jobs 2`, then judged again
with the exported programs reused; what to expect on a bigger machine.

    python benchmarks/jobs.py [--data ../shared/data/cifar10-jpg] [--images 1000] [--isolation auto]

The ten: the five examples of submissions/, each twice (the copy under another team name, so its
files differ and nothing is reused within a run). The test images: a class-balanced subset of
`--images` real test images (the fixed cost per submission is the same as on the whole set; the
prediction time scales with the images). Runs, each a whole `python -m harness evaluate` process
with its own results folder and the same cache (`HARNESS_CACHE`, decoded images):

  1. --jobs 1 --no-reuse   one at a time, stage 1 always run
  2. --jobs 2 --no-reuse   two at once
  3. --jobs 1              judged again: the programs of runs 1-2 reused, stage 1 skipped
  4. --jobs 2              judged again, two at once

It prints each run's wall time, evaluations per minute, the cores kept busy (CPU seconds of the
machine over wall seconds: run it on a quiet machine), checks that every run gave the same records (counts,
score, eligibility, correct predictions), and projects the figures onto a 16-core machine. Run it
on a quiet machine; it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
SAME = ("status", "params", "macs", "correct", "total", "eligible", "score", "effective")
RUNS = (("--jobs 1 --no-reuse", ["--jobs", "1", "--no-reuse"]), ("--jobs 2 --no-reuse", ["--jobs", "2", "--no-reuse"]),
        ("again, --jobs 1", ["--jobs", "1"]), ("again, --jobs 2", ["--jobs", "2"]))
BIG_CORES = 16  # the machine the projection is for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cifar10-jpg"))
    ap.add_argument("--images", type=int, default=1000, help="test images, class-balanced (default 1000)")
    ap.add_argument("--isolation", default="auto")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from harness.data import load_test
    from harness.record import read
    from tests.conftest import write_batches

    scratch = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    env = {**os.environ, "HARNESS_CACHE": str(scratch / "cache")}
    test = load_test(args.data)
    per = args.images // 10
    idx = np.concatenate([np.flatnonzero(test.labels == c)[:per] for c in range(10)])
    data = write_batches(scratch / "data", np.asarray(test.images()[idx]), test.labels[idx])
    dirs = []
    for example in sorted((REPO / "submissions").iterdir()):
        if not (example / "submission.yaml").exists():
            continue
        for copy in ("a", "b"):
            d = scratch / "subs" / f"{example.name}-{copy}"
            shutil.copytree(example, d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            manifest = yaml.safe_load((d / "submission.yaml").read_text())
            manifest["team"] = f"{manifest['team']}-{copy}"
            (d / "submission.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
            dirs.append(d)
    print(f"{len(dirs)} submissions, {len(idx):,} test images, isolation {args.isolation}, {os.cpu_count()} cores; "
          f"scratch {scratch}")
    warm = subprocess.run([sys.executable, "-m", "harness", "profile", str(dirs[0]), "--data", str(data),
                           "--isolation", args.isolation], env=env, capture_output=True, cwd=REPO)
    if warm.returncode not in (0, 1):
        sys.exit(f"warm-up failed: {warm.stderr.decode()[-2000:]}")
    figures, records = [], []
    for label, options in RUNS:
        results = scratch / f"results-{len(figures)}"
        before = _busy()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "harness", "evaluate", *map(str, dirs), "--data", str(data),
                               "--results", str(results), "--isolation", args.isolation, "--quiet", *options],
                              env=env, capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - start
        cpu = _busy() - before
        if done.returncode not in (0, 1):
            sys.exit(f"{label}: exit {done.returncode}\n{done.stderr[-3000:]}")
        recs = {r.team: r for r in map(read, results.glob("*.json"))}
        reused = sum(r.provenance.program == "reused" for r in recs.values())
        figures.append((label, wall, cpu, reused))
        records.append(recs)
        print(f"  {label:20} {wall:7.1f} s  {len(dirs) / wall * 60:5.1f} evaluations/min  "
              f"{cpu / wall:4.2f} cores busy  programs reused {reused}/{len(recs)}", flush=True)
    first = records[0]
    for recs in records[1:]:
        for team, r in first.items():
            for key in SAME:
                if getattr(r, key) != getattr(recs[team], key):
                    sys.exit(f"records differ: {team} {key}: {getattr(r, key)} != {getattr(recs[team], key)}")
    print("  the four runs gave the same records (" + ", ".join(SAME) + ")")
    _project(figures, len(dirs), len(idx))


def _busy() -> float:
    """The machine's busy CPU seconds so far, all cores (/proc/stat: everything but idle and iowait);
    on a quiet machine, what the run used: sandboxed workers escape a parent's rusage."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _project(figures, n: int, images: int) -> None:
    """What the measured figures mean on a 16-core machine: the evaluations are independent, so a
    batch is bound by CPU seconds once enough run at once to keep every core busy."""
    (_, one, cpu_one, _), (_, two, cpu_two, _), (_, again, cpu_again, _), _ = figures
    per_eval, busy = one / n, cpu_one / one  # wall seconds an evaluation, cores it keeps busy, one at a time
    cost, cost_again = cpu_two / n, cpu_again / n  # CPU seconds an evaluation (two at once), judged again
    jobs = max(1, round(BIG_CORES / busy))
    rate = min(jobs / per_eval, BIG_CORES / cost) * 60
    print(f"\n  one at a time: {per_eval:.1f} s an evaluation, {busy:.2f} cores busy; two at once on 2 cores: "
          f"{one / two:.2f}x the throughput, {cost:.1f} CPU s an evaluation; judged again with reused programs: "
          f"{one / again:.2f}x faster, {cost_again:.1f} CPU s an evaluation")
    print(f"  on {BIG_CORES} cores: about --jobs {jobs} keeps them busy (memory: {jobs} x 2 stages x memory_mb); "
          f"expect at most {rate:.0f} evaluations a minute of this size ({images:,} images; CPU-bound: "
          f"{BIG_CORES} / {cost:.1f} CPU s), {BIG_CORES / cost_again * 60:.0f} judged again; 1,500 evaluations in "
          f"about {1500 / rate / 60:.1f} h, against {1500 * per_eval / 3600:.1f} h one at a time")


if __name__ == "__main__":
    main()
