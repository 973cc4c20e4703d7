"""The sandbox's cost per evaluation: the same submission judged under `none` and `bwrap`, interleaved.

    python benchmarks/sandbox_overhead.py SUBMISSION --data PATH [--runs 5] [--device cpu]

Prints, per isolation, the wall-clock seconds of each whole evaluation (`judge()`: worker
start, sandbox set-up, torch import, model, inference, scoring), their median and mean, the
median difference bwrap - none, and checks that both give the same accuracy (correct count)
and the same score. Runs alternate between the two so that background load affects both alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from harness.config import load_rules, with_overrides
from harness.data import load_test
from harness.judge.evaluate import judge


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("submission")
    p.add_argument("--data", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    test = load_test(args.data)
    seconds: dict[str, list[float]] = {"none": [], "bwrap": []}
    outcomes: dict[str, set] = {"none": set(), "bwrap": set()}
    for i in range(args.runs):
        for isolation in ("none", "bwrap"):
            rules = with_overrides(load_rules(), isolation=isolation)
            t = time.perf_counter()
            rec = judge(args.submission, test, rules, args.device)
            seconds[isolation].append(time.perf_counter() - t)
            outcomes[isolation].add((rec.status, rec.correct, rec.total, rec.score.total if rec.score else None))
            print(f"run {i + 1} {isolation:5s} {seconds[isolation][-1]:7.2f} s  status {rec.status}  "
                  f"correct {rec.correct}/{rec.total}  isolation {rec.provenance.isolation}", flush=True)
    for isolation, values in seconds.items():
        print(f"{isolation:5s} median {statistics.median(values):.2f} s  mean {statistics.mean(values):.2f} s  "
              f"runs {', '.join(f'{v:.2f}' for v in values)}")
    diffs = [b - n for n, b in zip(seconds["none"], seconds["bwrap"], strict=True)]
    print(f"overhead bwrap - none: median {statistics.median(diffs):+.2f} s, mean {statistics.mean(diffs):+.2f} s "
          f"per evaluation")
    same = outcomes["none"] == outcomes["bwrap"] and len(outcomes["none"]) == 1
    print(f"same result under both: {same} {sorted(outcomes['none'])} vs {sorted(outcomes['bwrap'])}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
