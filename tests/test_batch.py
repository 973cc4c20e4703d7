"""A batch of submissions: each gets its record whatever the others do; the parent reads nothing
outside a submission and nothing without bounds; records are named safely and never corrupted;
an interrupted batch loses nothing and goes on (`--skip-evaluated`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.cli import main
from harness.errors import SubmissionError
from harness.jobs import MeasureResult
from harness.judge import files, runner, sandbox
from harness.record import MAX_COUNT, Provenance, Record, file_stem, now, read, write

from .conftest import ORACLE, REPO, class_images, make_submission, write_folder
from .test_hostile import survivors


def tree(root: Path, spec: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in spec.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_walk_hashes_files_records_inner_links_and_refuses_the_rest(tmp_path):
    sub = tree(tmp_path / "sub", {"submission.yaml": "team: a\n", "model.py": "x = 1\n", "pkg/util.py": "y = 2\n",
                                  "__pycache__/model.pyc": "junk", ".git/HEAD": "ref"})
    (sub / "alias.py").symlink_to("pkg/util.py")
    found = files.read(sub, 2**20)
    assert found.manifest == b"team: a\n" and found.total == 8 + 6 + 6 + 4 + 3 + 0
    assert list(found.hashes) == ["alias.py", "model.py", "pkg/util.py", "submission.yaml"]  # caches not hashed
    assert found.hashes["alias.py"].startswith("link:")  # recorded as a link, never followed
    assert files.combine(found.hashes) == files.combine(files.read(sub, 2**20).hashes)

    secret = tree(tmp_path / "host", {"secret.txt": "labels"}) / "secret.txt"
    for name, target in [("out.py", secret), ("up.py", "../host/secret.txt"), ("loop", "/")]:
        (sub / name).symlink_to(target)
        with pytest.raises(SubmissionError, match=f"{name}: a link to .*outside the submission directory"):
            files.read(sub, 2**20)
        (sub / name).unlink()
    os.mkfifo(sub / "pipe")
    with pytest.raises(SubmissionError, match="pipe: a FIFO"):
        files.read(sub, 2**20)
    (sub / "pipe").unlink()
    with pytest.raises(SubmissionError, match="more than 0 MiB"):
        files.read(sub, 20)
    (sub / "submission.yaml").write_text("team: a\n" + "#" * files.MANIFEST_BYTES)
    with pytest.raises(SubmissionError, match="more than the 64 KiB"):
        files.read(sub, 2**20)
    (sub / "submission.yaml").unlink()
    (sub / "submission.yaml").symlink_to("model.py")  # even within the directory
    with pytest.raises(SubmissionError, match="submission.yaml: a link; the manifest must be a regular file"):
        files.read(sub, 2**20)


def test_the_walk_is_bounded_in_entries(tmp_path, monkeypatch):
    sub = tree(tmp_path / "sub", {f"f{i}.txt": "" for i in range(12)})
    monkeypatch.setattr(files, "MAX_ENTRIES", 10)
    with pytest.raises(SubmissionError, match="more than 10 files and folders"):
        files.read(sub, 2**20)


def test_record_file_names_are_safe_for_any_team_and_name(tmp_path):
    def rec(team: str, name: str) -> Record:
        prov = Provenance(harness_version="t", scoring_version="2", created_at=now())
        return Record(team=team, name=name, directory="d", status="invalid", provenance=prov)

    stems = [file_stem(rec(team, name)) for team, name in [("a/b", "x"), ("a-b", "x"), ("../" * 100, "\0\n"),
                                                          ("é" * 300, "n"), ("alpha", "run-1")]]
    assert all(re.fullmatch(r"[0-9T]{15}-[A-Za-z0-9_-]{1,40}-[A-Za-z0-9_-]{1,40}-[0-9a-f]{8}", s) for s in stems)
    assert stems[0] != stems[1]  # the same slug, told apart by the hash of the exact names
    assert stems[-1].split("-", 1)[1].startswith("alpha-run-1-")
    path = write(rec("../../" + "x" * 300, "a/b"), tmp_path / "results")
    assert path.parent == tmp_path / "results" and read(path).team == "../../" + "x" * 300


def test_counts_out_of_range_are_refused_where_they_cross():
    good = {"params": 10, "macs": 20, "layers": [{"layer": "fc", "op": "matmul", "params": 10, "macs": 20}],
            "measured": {}, "structured_mac_share": 0.0, "device": "cpu", "torch_version": "2"}
    assert MeasureResult.model_validate(good).params == 10
    for key, value in [("params", 10**400), ("macs", MAX_COUNT + 1), ("structured_mac_share", float("inf"))]:
        with pytest.raises(ValidationError):
            MeasureResult.model_validate({**good, key: value})


def test_a_fault_of_the_judge_on_one_submission_is_its_record_and_the_batch_goes_on(capsys, tmp_path, monkeypatch,
                                                                                     folder_data):
    """Whatever the parent itself raises while judging one submission ends as that submission's record."""
    first, second = (make_submission(tmp_path / n, ORACLE) for n in ("first", "second"))
    real = runner.Worker

    def worker(stage, box, binds, job=None, **options):
        if any(str(first) in host for host in binds):
            raise RecursionError("maximum recursion depth exceeded")
        return real(stage, box, binds, job, **options)

    monkeypatch.setattr(runner, "Worker", worker)
    code = main(["evaluate", str(first), str(second), "--data", str(folder_data), "--results", str(tmp_path / "r"),
                 "--isolation", "none", "--json"])
    one, two = json.loads(capsys.readouterr().out)
    assert code == 3 and one["status"] == "error" and two["status"] == "ok" and two["eligible"]
    assert one["errors"] == ["the judge failed on this submission: RecursionError: maximum recursion depth exceeded"]
    assert "Traceback" in one["traceback"] and one["team"] == "testers"
    assert len(list((tmp_path / "r").glob("*.json"))) == 2


WRITER = """
import sys
from harness.record import Provenance, Record, now, write
prov = Provenance(harness_version="t", scoring_version="2", created_at="2026-12-02T10:00:00.000+00:00")
for i in range(int(sys.argv[2])):
    write(Record(team="same", name="same", directory=str(i), status="error", errors=["x" * 20000],
                 provenance=prov), sys.argv[1])
"""


def test_two_writers_of_one_results_folder_lose_and_corrupt_nothing(tmp_path):
    """Two processes writing records of the same team, name and time into one folder at once."""
    out = tmp_path / "results"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(out), "60"], cwd=REPO) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    records = sorted(out.iterdir())
    assert len(records) == 120 and all(p.suffix == ".json" for p in records)  # no temporary file left
    assert sorted(read(p).directory for p in records) == sorted(str(i) for i in range(60) for _ in range(2))


@pytest.mark.release
def test_kill_9_mid_batch_loses_nothing_leaves_no_worker_and_the_rerun_does_the_rest(tmp_path):
    """SIGKILL the harness while it judges the second of three submissions: the first record is whole,
    no worker survives it, and the same command with --skip-evaluated evaluates the other two."""
    isolation = "bwrap" if sandbox.bwrap_problem() is None else "none"
    marker = f"batch-{os.getpid()}-{time.time_ns()}"
    dirs = [make_submission(tmp_path / name, ORACLE, manifest={"team": name}) for name in ("first", "slow", "third")]
    code = (dirs[1] / "model.py").read_text()
    sleep = "def build_model():\n    __import__('time').sleep(600)"
    (dirs[1] / "model.py").write_text(code.replace("def build_model():", sleep))
    data = write_folder(tmp_path / "data", *class_images())
    results, scratch = tmp_path / "results", tmp_path / "scratch"
    scratch.mkdir()
    argv = [sys.executable, "-m", "harness", "evaluate", *map(str, dirs), "--data", str(data), "--results",
            str(results), "--isolation", isolation, "--skip-evaluated", "--timeout", "15"]
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), "TMPDIR": str(scratch), "BATCH_MARKER": marker}
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (list(results.glob("*.json")) and _building(scratch)):
        time.sleep(0.2)
    assert list(results.glob("*.json")) and _building(scratch), "the batch never reached its second submission"
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(1)
    assert survivors(marker, tmp_path) == []
    assert [read(p).team for p in results.glob("*.json")] == ["first"]
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert "skipped" in again.stderr and "2 evaluated, 1 skipped" in again.stdout, again.stdout + again.stderr
    teams = {read(p).team: read(p) for p in results.glob("*.json")}
    assert sorted(teams) == ["first", "slow", "third"] and "time limit of 15 s" in teams["slow"].errors[0]
    shutil.rmtree(scratch)


def test_ctrl_c_mid_batch_says_where_it_stopped_exits_130_and_the_resume_does_the_rest(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) while the second of three submissions is judged:
    exit status 130, the summary of what was judged, how to go on, no worker left; the same command
    with --skip-evaluated judges the other two, each with its verdict line as it is judged."""
    isolation = "bwrap" if sandbox.bwrap_problem() is None else "none"
    marker = f"ctrl-c-{os.getpid()}-{time.time_ns()}"
    dirs = [make_submission(tmp_path / name, ORACLE, manifest={"team": name}) for name in ("first", "slow", "third")]
    code = (dirs[1] / "model.py").read_text()
    (dirs[1] / "model.py").write_text(code.replace("def build_model():",
                                                   "def build_model():\n    __import__('time').sleep(600)"))
    data = write_folder(tmp_path / "data", *class_images())
    results, scratch = tmp_path / "results", tmp_path / "scratch"
    scratch.mkdir()
    argv = [sys.executable, "-m", "harness", "evaluate", *map(str, dirs), "--data", str(data), "--results",
            str(results), "--isolation", isolation, "--skip-evaluated", "--quiet"]
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), "TMPDIR": str(scratch), "BATCH_MARKER": marker}
    run = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (list(results.glob("*.json")) and _building(scratch)):
        time.sleep(0.2)
    assert _building(scratch), "the batch never reached its second submission"
    os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, (out, err)
    assert "[1/3] first/first: ELIGIBLE, score" in err and "[2/3] evaluating" in err
    assert "interrupted: 1 of 3 submissions: 1 evaluated, 0 skipped" in out and "2 not evaluated" in out
    assert "run the same command with --skip-evaluated" in err
    time.sleep(1)
    assert survivors(marker, tmp_path) == [] and [read(p).team for p in results.glob("*.json")] == ["first"]

    (dirs[1] / "model.py").write_text(code)  # the student fixes it; the instructor goes on
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "[1/3] skipped" in again.stderr and "[3/3] third/third: ELIGIBLE" in again.stderr
    assert "3 of 3 submissions: 2 evaluated, 1 skipped" in again.stdout
    assert [ln.split()[0] for ln in again.stdout.splitlines()[1:]] == ["first/first", "slow/slow", "third/third"]
    shutil.rmtree(scratch)


def _building(scratch: Path) -> bool:
    return any(p.name.startswith("harness-export-") for p in scratch.iterdir())



def test_a_verdict_line_says_the_count_the_time_left_and_the_first_informative_line():
    from harness.judge.batch import Batch
    from harness.record import Compression, Score

    prov = Provenance(harness_version="t", scoring_version="3", created_at=now())
    bad = Record(team="t", name="typo", directory="/home/prof/in/t/typo", status="invalid", provenance=prov,
                 errors=["/home/prof/in/t/typo/submission.yaml: 1 problem(s)\n  compression.weight_bits: Input "
                         "should be a valid integer (got 'eight')"])
    good = Record(team="t", name="v2", directory="in/t/v2", status="ok", accuracy=0.9002, eligible=False,
                  reasons=["accuracy 90.02% below 90.25%"], declared=Compression(),
                  score=Score(params_term=0.1, ops_term=0.2, total=0.3), provenance=prov)
    batch = Batch(["in/t/v2", "in/t/typo", "in/t/a", "in/t/b"], todo=3)
    assert batch.verdict("in/t/typo", bad, 10.0) == (
        "[1/4] t/typo: INVALID: submission.yaml: 1 problem(s): compression.weight_bits: Input should be a valid "
        "integer (got 'eight')  (10 s; 2 to go, about 20 s left)")
    assert batch.verdict("in/t/v2", good, 50.0) == (
        "[2/4] t/v2: not eligible (accuracy 90.02% below 90.25%), score 0.3000, accuracy 90.02%  "
        "(50 s; 1 to go, about 30 s left)")
    summary = batch.summary(interrupted=True)
    assert summary.splitlines()[0] == ("interrupted: 2 of 4 submissions: 2 evaluated, 0 skipped (evaluated already "
                                       "with these files and rules), 2 not evaluated")
    assert [ln.split()[:2] for ln in summary.splitlines()[1:]] == [["t/v2", "not"], ["t/typo", "INVALID"]]  # as given

    two = Batch(["a", "b", "c", "d", "e"], todo=5, jobs=2)  # two at once: the time left halves
    assert two.verdict("a", good, 60.0).endswith("(60 s; 4 to go, about 2 min left)")
