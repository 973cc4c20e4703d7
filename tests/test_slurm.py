"""A batch through a real single-node Slurm (tests/slurm/local.sh starts Debian's slurmctld, slurmd
and munge without systemd): the array's records are the records of a local run, the job after the
array renders the board, a task cancelled mid-evaluation leaves a record saying so, one whose
judge is killed outright gets one from the finish job, and `--skip-evaluated` completes the batch.

The slurm tier (`pytest -q -s -m slurm`): it prints the records side by side. Skipped where Slurm
is not installed; `.ci/run` installs it and fails loudly if it cannot start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cluster.slurm import Batch
from harness.record import Record, read

from .conftest import ORACLE, REPO, class_images, make_submission, write_folder
from .test_jobs import CONV

pytestmark = pytest.mark.slurm
SCRIPT = REPO / "tests" / "slurm" / "local.sh"
WAIT_S = 600
SAME = ("status", "team", "name", "params", "macs", "correct", "total", "eligible", "reasons", "claims_verified",
        "score", "effective")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A single-node Slurm for this module: the environment its clients need (SLURM_CONF)."""
    if shutil.which("slurmctld") is None or shutil.which("sbatch") is None:
        pytest.skip("Slurm is not installed here (bash tests/slurm/local.sh install; .ci/run does it)")
    folder = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    conf = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
    yield {**os.environ, "SLURM_CONF": conf}
    subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], capture_output=True, timeout=120)


def _harness(*argv: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=WAIT_S)


def _options(data: Path, results: Path) -> list[str]:
    return ["--data", str(data), "--results", str(results), "--isolation", "none", "--memory", "2G"]


def _submit(dirs, data, results, tmp: Path, name: str, env: dict, *more: str) -> Batch:
    sent = _harness("evaluate", *map(str, dirs), *_options(data, results), "--slurm", "--batch", str(tmp / name),
                    "--board", str(tmp / f"{name}-board"), "--cpus", "1", "--time", "10", *more, env=env, cwd=tmp)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    print(sent.stderr + sent.stdout)
    return Batch.load(tmp / name)


def _finished(batch: Batch, env: dict) -> None:
    """Wait until the batch's finish job has left the queue."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "-h", "-j", f"{batch.array_job},{batch.finish_job}"], env=env,
                                capture_output=True, text=True).stdout
        if not queued.strip():
            return
        time.sleep(1)
    pytest.fail(f"batch {batch.folder} still queued after {WAIT_S} s")


def _records(results: Path) -> dict[str, Record]:
    return {r.name: r for r in sorted(map(read, results.glob("*.json")), key=lambda r: r.provenance.created_at)}


def test_an_array_gives_the_records_of_a_local_run_and_its_finish_job_renders_the_board(cluster, tmp_path):
    data = write_folder(tmp_path / "data", *class_images())
    dirs = [make_submission(tmp_path / "oracle", ORACLE, manifest={"team": "a"}),
            make_submission(tmp_path / "memoriser", ORACLE, manifest={"team": "b"}, factory="build_memoriser"),
            make_submission(tmp_path / "conv", CONV, manifest={"team": "c"})]
    env = {**cluster, "HARNESS_CACHE": str(tmp_path / "cache")}
    local = _harness("evaluate", *map(str, dirs), *_options(data, tmp_path / "local"), "--quiet", env=env,
                     cwd=tmp_path)
    assert local.returncode == 1, local.stderr  # the memoriser and the conv net are not eligible
    batch = _submit(dirs, data, tmp_path / "array", tmp_path, "batch", env)
    assert len(batch.tasks) == 3 and batch.array_job and batch.finish_job
    _finished(batch, env)
    here, there = _records(tmp_path / "local"), _records(tmp_path / "array")
    print(f"\n{'':14}{'local run':>40}  {'Slurm array':>40}")
    for name in sorted(here):
        for key in SAME:
            a, b = getattr(here[name], key), getattr(there[name], key)
            print(f"{name:10} {key:16} {str(a)[:38]:>38}  {str(b)[:38]:>38}")
            assert a == b, (name, key)
    jobs = sorted(r.provenance.job or "" for r in there.values())
    print("jobs:", jobs)
    assert jobs == [f"slurm {batch.array_job}_{i}" for i in range(3)]
    assert all(r.provenance.job is None for r in here.values())
    board = tmp_path / "batch-board"
    assert (board / "index.html").exists() and (board / "leaderboard.csv").exists()
    finish_log = (tmp_path / "batch" / "logs" / "finish.log").read_text()
    assert "1 team ranked, 2 without an eligible submission, 3 evaluations read" in finish_log, finish_log
    status = _harness("slurm", "status", str(tmp_path / "batch"), env=env, cwd=tmp_path)
    print(status.stdout)
    assert "3 recorded, 0 being evaluated, 0 waiting, 0 without a record" in status.stdout
    assert "a/oracle: ELIGIBLE" in status.stdout


def test_a_task_cancelled_or_killed_mid_evaluation_is_recorded_and_skip_evaluated_completes_the_batch(cluster,
                                                                                                      tmp_path):
    """Three tasks: one judged, one `scancel`led while its model builds (its judge records it stopped:
    CANCELLED), one whose judge is SIGKILLed (nothing it can do: the finish job records it, with the
    task's state). The same command with --skip-evaluated sends those two again and completes the batch."""
    data = write_folder(tmp_path / "data", *class_images())
    pids = tmp_path / "pids"
    pids.mkdir()
    slow = ORACLE.replace("def build_model():", (  # while $SLOW_TEST is set: a mark in that folder, then sleep
        "def build_model():\n    import os, time, pathlib\n    if os.environ.get('SLOW_TEST'):\n"
        "        name = os.path.basename(os.path.dirname(__file__))\n"
        "        pathlib.Path(os.environ['SLOW_TEST'], name).write_text('')\n        time.sleep(600)"))
    dirs = [make_submission(tmp_path / "quick", ORACLE, manifest={"team": "quick"}),
            make_submission(tmp_path / "cancelled", slow, manifest={"team": "cancelled"}),
            make_submission(tmp_path / "killed", slow, manifest={"team": "killed"})]
    env = {**cluster, "HARNESS_CACHE": str(tmp_path / "cache")}
    batch = _submit(dirs, data, tmp_path / "results", tmp_path, "batch", {**env, "SLOW_TEST": str(pids)},
                    "--at-once", "3")
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and len(list(pids.iterdir())) < 2:
        time.sleep(0.5)
    assert len(list(pids.iterdir())) == 2, "the slow submissions never started building"
    status = _harness("slurm", "status", str(tmp_path / "batch"), env=env, cwd=tmp_path)
    print(status.stdout)
    assert "2 being evaluated" in status.stdout and status.stdout.count(": RUNNING for ") == 2
    assert "finish job (records of lost tasks, the leaderboard in" in status.stdout and \
        "PENDING (Dependency)" in status.stdout
    cancel_task = batch.task_of(str(dirs[1].resolve()))
    subprocess.run(["scancel", f"{batch.array_job}_{cancel_task}"], env=env, check=True)
    judge_of_killed = _judge_of(batch, batch.task_of(str(dirs[2].resolve())), env)
    os.kill(judge_of_killed, signal.SIGKILL)
    _finished(batch, env)

    recs = _records(tmp_path / "results")
    print({n: (r.status, r.stopped, r.errors[:1]) for n, r in recs.items()})
    assert recs["quick"].status == "ok" and recs["quick"].eligible
    cancelled, killed = recs["cancelled"], recs["killed"]
    assert cancelled.status == "error" and cancelled.stopped is not None and "CANCELLED" in cancelled.stopped
    assert f"Slurm stopped job {batch.array_job}_{cancel_task}" in cancelled.stopped
    assert killed.status == "error" and killed.stopped is not None
    assert f"Slurm task {batch.array_job}_{batch.task_of(str(dirs[2].resolve()))} ended without recording" \
        in killed.stopped
    status = _harness("slurm", "status", str(tmp_path / "batch"), env=env, cwd=tmp_path)
    print(status.stdout)
    assert "3 recorded" in status.stdout and "(2 stopped before they finished" in status.stdout
    assert "cancelled/cancelled: STOPPED: Slurm stopped job" in status.stdout

    again = _submit(dirs, data, tmp_path / "results", tmp_path, "again", env, "--skip-evaluated")
    assert [Path(d).name for d in again.dirs] == ["cancelled", "killed"]
    _finished(again, env)
    done = [r for r in map(read, (tmp_path / "results").glob("*.json")) if r.status == "ok"]
    assert sorted(r.name for r in done) == ["cancelled", "killed", "quick"]
    assert (tmp_path / "again-board" / "index.html").exists()
    status = _harness("slurm", "status", str(tmp_path / "again"), env=env, cwd=tmp_path)
    print(status.stdout)
    assert "2 recorded, 0 being evaluated, 0 waiting, 0 without a record" in status.stdout


def _judge_of(batch: Batch, task: int, env: dict) -> int:
    """The PID of the judge (`python -m harness evaluate`, exec'ed by array.sh) of the batch's task `task`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"harness" in cmd and b"evaluate" in cmd and f"SLURM_ARRAY_TASK_ID={task}".encode() in environ and \
                f"SLURM_ARRAY_JOB_ID={batch.array_job}".encode() in environ:
            return int(proc.name)
    raise AssertionError(f"no judge of task {task} found")


def test_a_task_at_its_time_limit_is_recorded_as_timed_out(cluster, tmp_path):
    """--time 1 (a minute; Slurm's timer checks about every 30 s) for a submission that builds for
    ten: its judge gets SIGTERM with the job COMPLETING for reason TimeLimit, and says so."""
    data = write_folder(tmp_path / "data", *class_images())
    slow = ORACLE.replace("def build_model():", "def build_model():\n    __import__('time').sleep(600)")
    sub = make_submission(tmp_path / "slow", slow, manifest={"team": "slow"}, state={})
    env = {**cluster, "HARNESS_CACHE": str(tmp_path / "cache")}
    sent = _harness("evaluate", str(sub), *_options(data, tmp_path / "results"), "--slurm", "--batch",
                    str(tmp_path / "batch"), "--board", str(tmp_path / "board"), "--cpus", "1", "--time", "1",
                    env=env, cwd=tmp_path)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    batch = Batch.load(tmp_path / "batch")
    _finished(batch, env)
    (rec,) = _records(tmp_path / "results").values()
    print(rec.stopped)
    assert rec.status == "error" and rec.stopped == f"Slurm stopped job {batch.array_job}_0: TIMEOUT, its time " \
                                                    "limit was reached"
    assert "DUE TO TIME LIMIT" in (tmp_path / "batch" / "logs" / "task-0.log").read_text()
