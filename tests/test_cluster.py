"""What `evaluate --slurm` sends, without a cluster: Slurm's commands replaced by scripts that log
their arguments and answer as Slurm 22.05 does (tests/test_slurm.py runs a real one)."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest

from harness.cli import main
from harness.cluster import slurm
from harness.record import Provenance, Record, now, write

from .conftest import ORACLE, class_images, make_submission, write_folder


def fake(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/bash\necho \"{name} $*\" >> {shlex.quote(str(bin_dir / 'calls'))}\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """sbatch answers job ids 41, 42, ...; squeue and scontrol what the test writes in their files."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "next").write_text("41")
    fake(bin_dir, "sbatch", f'n=$(cat {bin_dir}/next); echo $((n + 1)) > {bin_dir}/next; echo "$n"')
    fake(bin_dir, "squeue", f"cat {bin_dir}/squeue.out 2>/dev/null || true")
    fake(bin_dir, "scontrol", f"cat {bin_dir}/scontrol.out 2>/dev/null || true")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_the_array_and_its_finish_job_carry_the_options_and_the_tasks_their_submissions(tmp_path, cluster,
                                                                                        monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = write_folder(tmp_path / "data", *class_images())
    dirs = [make_submission(tmp_path / f"s{i}", ORACLE, manifest={"team": f"t{i}"}) for i in range(5)]
    code = main(["evaluate", *map(str, dirs), "--data", str(data), "--results", "res", "--memory", "4G",
                 "--isolation", "none", "--slurm", "--batch", "b", "--per-task", "2", "--at-once", "3",
                 "--partition", "gpu", "--time", "30:00", "--gres", "gpu:1", "--sbatch-arg=--account=cs101"])
    assert code == 0
    out = capsys.readouterr().out
    assert "submitted 5 submissions in 3 tasks: array job 41; finish job 42" in out
    batch = slurm.Batch.load(tmp_path / "b")
    assert batch.tasks == [[str(d) for d in dirs[:2]], [str(d) for d in dirs[2:4]], [str(dirs[4])]]
    assert (batch.array_job, batch.finish_job, batch.results) == ("41", "42", str(tmp_path / "res"))
    array = (tmp_path / "b" / "array.sh").read_text().splitlines()
    for line in ("#SBATCH --array=0-2%3", "#SBATCH --partition=gpu", "#SBATCH --time=30:00", "#SBATCH --gres=gpu:1",
                 "#SBATCH --mem=10240M", "#SBATCH --cpus-per-task=2", "#SBATCH --account=cs101",
                 f"#SBATCH --output={tmp_path}/b/logs/task-%a.log"):
        assert line in array, (line, array)
    assert array[-1].startswith("exec ") and array[-1].endswith(' -m harness evaluate "${args[@]}"')
    args = (tmp_path / "b" / "tasks" / "1.args").read_text().splitlines()
    assert args[:2] == [str(dirs[2]), str(dirs[3])] and args[-2:] == ["--skip-evaluated", "--quiet"]
    forwarded = args[2:-2]  # the evaluate options, paths absolute, the cluster's own left out
    assert forwarded[forwarded.index("--data") + 1] == str(data)
    assert forwarded[forwarded.index("--results") + 1] == str(tmp_path / "res")
    assert "--memory" in forwarded and "--slurm" not in forwarded and "--partition" not in forwarded
    finish = (tmp_path / "b" / "finish.sh").read_text()
    assert "#SBATCH --partition=gpu" in finish and "--gres" not in finish and "--account=cs101" in finish
    assert f"-m harness slurm finish {tmp_path}/b" in finish
    calls = (cluster / "calls").read_text().splitlines()
    assert calls == [f"sbatch --parsable {tmp_path}/b/array.sh",
                     f"sbatch --parsable --dependency=afterany:41 {tmp_path}/b/finish.sh"]

    again = main(["evaluate", str(dirs[0]), "--data", str(data), "--results", "res", "--slurm", "--batch", "b"])
    assert again == 3 and "holds a batch already" in capsys.readouterr().err


def test_status_says_what_is_recorded_running_waiting_or_lost(tmp_path, cluster):
    dirs = [str(tmp_path / f"s{i}") for i in range(4)]
    batch = slurm.Batch(created_at=now(), folder=str(tmp_path), workdir=str(tmp_path), python="python",
                        tasks=[[d] for d in dirs], evaluate=[], results=str(tmp_path / "res"),
                        board=str(tmp_path / "board"), array_job="41", finish_job="42")
    batch.save()
    prov = Provenance(harness_version="t", scoring_version="3", created_at=now())
    write(Record(team="t0", name="s0", directory=dirs[0], status="ok", eligible=True, accuracy=0.91,
                 provenance=prov), tmp_path / "res")
    (cluster / "squeue.out").write_text("1|RUNNING|0:42|None\n2|PENDING|0:00|Resources\n")
    (cluster / "scontrol.out").write_text("JobId=45 ArrayJobId=41 ArrayTaskId=3 JobState=NODE_FAIL Reason=None\n")
    text = slurm.progress(tmp_path)
    assert "4 submissions in 4 tasks; 1 recorded, 1 being evaluated, 1 waiting, 1 without a record" in text
    assert f"[task 0] {dirs[0]}: t0/s0: ELIGIBLE" in text and f"[task 1] {dirs[1]}: RUNNING for 0:42" in text
    assert f"[task 2] {dirs[2]}: PENDING (Resources)" in text
    assert f"[task 3] {dirs[3]}: no record, and its task is no longer queued" in text
    assert slurm.lost(batch)[-1] == (dirs[3], "Slurm task 41_3 ended without recording this submission: "
                                              "NODE_FAIL, its node failed")


def test_why_stopped_reads_the_reason_while_the_job_is_completing(cluster, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "45")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "41")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert slurm.job_here() == "slurm 41_3"
    for line, why in [("JobState=COMPLETING Reason=TimeLimit", "TIMEOUT, its time limit was reached"),
                      ("JobState=COMPLETING Reason=None", "CANCELLED (scancel) or preempted, before its time limit"),
                      ("JobState=PREEMPTED Reason=None", "PREEMPTED, preempted by another job")]:
        (cluster / "scontrol.out").write_text(f"JobId=45 {line}\n")
        assert slurm.why_stopped() == f"Slurm stopped job 41_3: {why}"
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID")
    assert slurm.job_here() is None and slurm.why_stopped() == "SIGTERM: the judge was told to stop (kill)"


def test_without_slurm_the_message_says_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    data = write_folder(tmp_path / "data", *class_images())
    sub = make_submission(tmp_path / "s", ORACLE)
    assert main(["evaluate", str(sub), "--data", str(data), "--results", str(tmp_path / "r"), "--slurm",
                 "--batch", str(tmp_path / "b")]) == 3
    assert "sbatch not found: --slurm needs Slurm's client commands" in capsys.readouterr().err


def test_a_line_break_in_a_path_is_refused_before_anything_is_written(tmp_path, cluster):
    with pytest.raises(slurm.SlurmError, match="holds a line break"):
        slurm.submit([str(tmp_path / "a\nb")], ["--data", str(tmp_path)], str(tmp_path / "res"),
                     folder=str(tmp_path / "b"))
    assert not (tmp_path / "b").exists() and not (cluster / "calls").exists()
