"""Several evaluations at once (`evaluate --jobs N`) and a batch stopped by SIGTERM: the same records
as one at a time, each stage held to its own memory limit, and a stopped submission recorded as
stopped, then evaluated again by `--skip-evaluated`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.record import Record, read

from .conftest import ORACLE, class_images, make_submission, write_folder
from .test_hostile import survivors

HOSTILE = Path(__file__).resolve().parent / "hostile"
CONV = """
import torch
from torch import nn


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 10))
"""
SAME = ("status", "team", "name", "params", "macs", "correct", "total", "eligible", "reasons", "claims_verified")


def _batch(tmp_path: Path) -> list[Path]:
    """Four submissions: eligible, a memoriser the flip check catches, a conv net of chance accuracy,
    and a memory hog its stage's limit kills."""
    dirs = [make_submission(tmp_path / "oracle", ORACLE, manifest={"team": "a"}),
            make_submission(tmp_path / "memoriser", ORACLE, manifest={"team": "b"}, factory="build_memoriser"),
            make_submission(tmp_path / "conv", CONV, manifest={"team": "c"})]
    hog = (HOSTILE / "memory_hog" / "model.py").read_text()  # hoards 6 GiB before it builds anything
    return [*dirs, make_submission(tmp_path / "hog", hog, manifest={"team": "d"}, state={})]


def _evaluate(dirs: list[Path], data: Path, results: Path, *options: str, env: dict) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "harness", "evaluate", *map(str, dirs), "--data", str(data), "--results",
            str(results), "--isolation", "none", "--memory", "1G", "--quiet", "--no-reuse", *options]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)


def _by_name(results: Path) -> dict[str, Record]:
    return {r.name: r for r in map(read, results.glob("*.json"))}


def test_two_at_once_gives_the_records_of_one_at_a_time_with_each_memory_limit_held(tmp_path):
    dirs = _batch(tmp_path)
    data = write_folder(tmp_path / "data", *class_images())
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    one = _evaluate(dirs, data, tmp_path / "one", "--jobs", "1", env=env)
    two = _evaluate(dirs, data, tmp_path / "two", "--jobs", "2", env=env)
    assert one.returncode == two.returncode == 3, one.stderr + two.stderr  # the hog: an error
    assert "2 evaluations at once on" in two.stderr and "up to 4,096 MiB together" in two.stderr
    a, b = _by_name(tmp_path / "one"), _by_name(tmp_path / "two")
    assert sorted(a) == sorted(b) == ["conv", "hog", "memoriser", "oracle"]
    for name in a:
        assert {k: getattr(a[name], k) for k in SAME} == {k: getattr(b[name], k) for k in SAME}, name
        # the measured bits are read on a fresh random draw of probe images each time (one at a time too): a
        # toy model's may differ; what they credit, and the score, may not
        assert a[name].score == b[name].score and a[name].effective == b[name].effective, name
    assert a["oracle"].eligible and not a["memoriser"].eligible and a["conv"].status == "ok"
    for rec in (a["hog"], b["hog"]):  # killed at its own stage's limit, under two at once too
        assert rec.status == "error" and "memory limit of 1024 MiB" in rec.errors[0], rec.errors
    # the summary lists the batch in the order given, whichever finished first
    rows = [ln.split()[0] for ln in two.stdout.splitlines()[1:]]
    assert rows == ["a/oracle", "b/memoriser", "c/conv", "d/hog"], two.stdout


def test_sigterm_records_the_submissions_in_progress_as_stopped_and_skip_evaluated_judges_them_again(tmp_path):
    """SIGTERM (what kill, and Slurm at a time limit or an scancel, send) while two slow submissions
    are judged at once: exit 143, each gets an error record that says it was stopped, no worker is
    left; --skip-evaluated then judges exactly those two again."""
    marker = f"sigterm-{os.getpid()}-{time.time_ns()}"
    first = make_submission(tmp_path / "first", ORACLE, manifest={"team": "first"})
    slow = []  # slow while $SLOW_TEST is set (isolation none passes the environment): the same files after
    for name in ("slow1", "slow2"):
        code = ORACLE.replace("def build_model():", "def build_model():\n    if __import__('os').environ.get("
                                                    "'SLOW_TEST'):\n        __import__('time').sleep(600)")
        slow.append(make_submission(tmp_path / name, code, manifest={"team": name}))
    data = write_folder(tmp_path / "data", *class_images())
    results, scratch = tmp_path / "results", tmp_path / "scratch"
    scratch.mkdir()
    argv = [sys.executable, "-m", "harness", "evaluate", str(first), *map(str, slow), "--data",
            str(data), "--results", str(results), "--isolation", "none", "--jobs", "2", "--skip-evaluated",
            "--quiet"]
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), "TMPDIR": str(scratch), "BATCH_MARKER": marker}
    run = subprocess.Popen(argv, env={**env, "SLOW_TEST": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (len(list(results.glob("*.json"))) == 1 and _building(scratch) == 2):
        time.sleep(0.2)
    assert _building(scratch) == 2, "the two slow submissions were never judged at once"
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 143, (out, err)
    recs = _by_name(results)
    assert sorted(recs) == ["first", "slow1", "slow2"]
    for name in ("slow1", "slow2"):
        assert recs[name].status == "error" and recs[name].stopped == "SIGTERM: the judge was told to stop (kill)"
        assert "stopped before it finished" in recs[name].errors[0] and "--skip-evaluated" in recs[name].errors[0]
        assert recs[name].provenance.submission_sha256 and recs[name].team == name
    assert f"stopped {slow[0]}" in err and "interrupted: 1 of 3 submissions" in out
    time.sleep(1)
    assert survivors(marker, tmp_path) == []

    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 of 3 submissions: 2 evaluated, 1 skipped" in again.stdout
    done = [r for r in map(read, results.glob("*.json")) if r.status == "ok"]
    assert sorted(r.name for r in done) == ["first", "slow1", "slow2"]  # the same files, judged in full now
    assert {r.provenance.submission_sha256 for r in done if r.name != "first"} == \
        {recs["slow1"].provenance.submission_sha256, recs["slow2"].provenance.submission_sha256}


def _building(scratch: Path) -> int:
    return sum(p.name.startswith("harness-export-") for p in scratch.iterdir())
