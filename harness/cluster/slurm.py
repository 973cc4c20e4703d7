"""A batch of evaluations as one Slurm job array, and a job after it that renders the board.

    python -m harness evaluate DIR... --data PATH [evaluate's options] --slurm [--partition P]
        [--time T] [--gres G] [--cpus N] [--mem SIZE] [--per-task N] [--at-once K]
        [--sbatch-arg ARG]... [--batch DIR] [--board DIR] [--skip-evaluated]
    python -m harness slurm status BATCH
    python -m harness slurm finish BATCH    (what the job after the array runs)

`submit` writes a batch folder on the shared filesystem (default `batches/<time>`): `batch.json`
(the `Batch`: the directories of each task, the evaluate options, the job ids), `tasks/I.args`
(task I's evaluate command line, an argument a line), `array.sh` and `finish.sh` (what Slurm
runs, with their `#SBATCH` lines, to read or to submit again by hand) and `logs/` (each task's
output). It submits one array, a task per `per_task` submissions, at most `at_once` running
(`%K`), then `finish.sh` with `--dependency=afterany:` the array.

Each task runs the ordinary `python -m harness evaluate` on its submissions, with the batch's
options and `--skip-evaluated --quiet`, on its node (`exec`ed, so that Slurm's signals reach the
judge itself): the same judge, the same sandbox, the record of each written atomically into the
shared results folder and marked with its job (`provenance.job`, `job_here`). Slurm stops a task
with SIGTERM (a time limit, a preemption, an `scancel`), then SIGKILL `KillWait` seconds later:
the judge then kills its workers and writes the submission in progress an error record with
`stopped` (`why_stopped`: the job's state as Slurm gives it). The finish job writes the same for
each submission of the batch left without a record since the batch was submitted (`lost`: a
task lost with its node, or killed outright, with its task's state), and renders the
leaderboard. `--skip-evaluated` at submission sends only the submissions without a complete
record (a stopped record is not one), so the same command completes a batch.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ..errors import HarnessError
from ..record import Record, now, read

BATCH = "batch.json"
QUERY_S = 30  # seconds allowed to one sbatch, squeue or scontrol call
JUDGE_MB = 2048  # a task's memory beside its two stages' limits: the judge's process, MiB
FINISH_TIME = "30:00"  # the finish job's time limit: reading the records and rendering the board
STATES = {  # Slurm's job states that end a task early, in words
    "CANCELLED": "cancelled (scancel)",
    "TIMEOUT": "its time limit was reached",
    "PREEMPTED": "preempted by another job",
    "NODE_FAIL": "its node failed",
    "FAILED": "it failed (its process ended with an error or was killed)",
    "OUT_OF_MEMORY": "it ran out of the memory Slurm granted it",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "its deadline passed",
}


class SlurmError(HarnessError):
    """Slurm refused the batch, or cannot be reached (sbatch missing, a bad option)."""


class Batch(BaseModel):
    """What was sent to Slurm: the batch's own file, batch.json, read by its tasks and its status."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int = 1
    created_at: str
    folder: str
    workdir: str  # where the tasks run (the submitter's working folder)
    python: str  # the interpreter that runs the harness on the nodes
    tasks: list[list[str]]  # the submission directories each array task evaluates, absolute
    evaluate: list[str]  # evaluate's options for every task (--data, --results, ...), paths absolute
    results: str
    board: str  # where the finish job renders the leaderboard
    array_job: str | None = None
    finish_job: str | None = None

    @classmethod
    def load(cls, folder: str | Path) -> Batch:
        path = Path(folder) / BATCH
        try:
            return cls.model_validate_json(path.read_text())
        except FileNotFoundError:
            raise SlurmError(f"{path}: no such batch file (a batch folder holds the batch.json that "
                             "evaluate --slurm wrote)") from None
        except ValueError as err:
            raise SlurmError(f"{path}: not a batch file: {str(err).splitlines()[0]}") from None

    def save(self) -> None:
        path = Path(self.folder) / BATCH
        part = path.with_suffix(".part")
        part.write_text(self.model_dump_json(indent=2) + "\n")
        os.replace(part, path)

    @property
    def dirs(self) -> list[str]:
        return [d for task in self.tasks for d in task]

    def task_of(self, directory: str) -> int:
        return next(i for i, task in enumerate(self.tasks) if directory in task)


def submit(dirs: list[str], evaluate: list[str], results: str, *, folder: str | None = None,
           board: str = "leaderboard", per_task: int = 1, at_once: int | None = None,
           partition: str | None = None, time: str | None = None, gres: str | None = None, cpus: int = 2,
           mem: str | None = None, extra: list[str] | None = None) -> Batch:
    """Write the batch folder and submit the array and its finish job; the batch, with their ids."""
    if not dirs:
        raise SlurmError("nothing to submit: every submission has a record already")
    if per_task < 1 or (at_once is not None and at_once < 1) or cpus < 1:
        raise SlurmError("--per-task, --at-once and --cpus must be at least 1")
    sbatch = _tool("sbatch")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    where = Path(folder or Path("batches") / stamp).resolve()
    if (where / BATCH).exists():
        raise SlurmError(f"{where} holds a batch already; name another folder with --batch")
    tasks = [[str(Path(d).resolve()) for d in dirs[i:i + per_task]] for i in range(0, len(dirs), per_task)]
    lines_of = [[*task, *evaluate, "--skip-evaluated", "--quiet"] for task in tasks]  # each task's evaluate argv
    if (bad := next((a for args in lines_of for a in args if "\n" in a), None)) is not None:
        raise SlurmError(f"a path or option holds a line break: {bad!r}")
    (where / "logs").mkdir(parents=True, exist_ok=True)
    batch = Batch(created_at=now(), folder=str(where), workdir=str(Path.cwd()), python=sys.executable, tasks=tasks,
                  evaluate=evaluate, results=str(Path(results).resolve()), board=str(Path(board).resolve()))
    array = f"0-{len(tasks) - 1}" + (f"%{at_once}" if at_once else "")
    lines = [f"--job-name=harness-{stamp}", f"--array={array}", f"--output={where}/logs/task-%a.log",
             f"--cpus-per-task={cpus}"]
    lines += [f"--{key}={value}" for key, value in (("partition", partition), ("time", time), ("gres", gres),
                                                     ("mem", mem)) if value]
    (where / "tasks").mkdir()
    for i, args in enumerate(lines_of):  # one argument a line
        (where / "tasks" / f"{i}.args").write_text("".join(f"{a}\n" for a in args))
    python = shlex.quote(batch.python)
    _script(where / "array.sh", lines + list(extra or []), batch,
            f'mapfile -t args < {shlex.quote(str(where))}/tasks/"$SLURM_ARRAY_TASK_ID".args\n'
            f'exec {python} -m harness evaluate "${{args[@]}}"')
    after = [f"--job-name=harness-{stamp}-finish", f"--output={where}/logs/finish.log", "--cpus-per-task=1",
             f"--time={FINISH_TIME}"] + ([f"--partition={partition}"] if partition else [])
    _script(where / "finish.sh", after + list(extra or []), batch,
            f"exec {python} -m harness slurm finish {shlex.quote(str(where))}")
    batch.save()
    batch.array_job = _sbatch(sbatch, [str(where / "array.sh")])
    batch.save()
    batch.finish_job = _sbatch(sbatch, [f"--dependency=afterany:{batch.array_job}", str(where / "finish.sh")])
    batch.save()
    return batch


def lost(batch: Batch) -> list[tuple[str, str]]:
    """The batch's submissions left without a record since it was submitted, each with why, in
    words: its task's state as Slurm tells it (a node failure, a judge killed outright)."""
    found = recorded(batch)
    out = []
    for d in batch.dirs:
        if d not in found:
            i = batch.task_of(d)
            state = task_state(f"{batch.array_job}_{i}")
            out.append((d, f"Slurm task {batch.array_job}_{i} ended without recording this submission: "
                           f"{_in_words(state)}"))
    return out


def recorded(batch: Batch) -> dict[str, Record]:
    """The newest record of each of the batch's submissions written since it was submitted (or the
    one `--skip-evaluated` found before), by directory."""
    newest: dict[str, Record] = {}
    wanted = set(batch.dirs)
    for path in sorted(Path(batch.results).glob("*.json")):
        try:
            rec = read(path)
        except (OSError, ValueError):
            continue
        d = str(Path(rec.directory).resolve())
        if d in wanted and rec.kind == "evaluate" and rec.provenance.created_at >= batch.created_at:
            if d not in newest or rec.provenance.created_at > newest[d].provenance.created_at:
                newest[d] = rec
    return newest


def progress(folder: str | Path) -> str:
    """How far the batch is: each submission's verdict, or its task's state; the finish job's."""
    from ..judge.batch import verdict

    batch = Batch.load(folder)
    found = recorded(batch)
    states = queue_states(batch.array_job) if batch.array_job else {}
    rows, counts = [], {"recorded": 0, "running": 0, "waiting": 0, "lost": 0, "stopped": 0}
    for d in batch.dirs:
        i = batch.task_of(d)
        if (rec := found.get(d)) is not None:
            counts["recorded"] += 1
            counts["stopped"] += rec.stopped is not None
            what = f"{rec.team}/{rec.name}: {verdict(rec)}"
        elif (state := states.get(i)) is not None:
            key = "running" if state.startswith("RUNNING") else "waiting"
            counts[key] += 1
            what = state
        else:
            counts["lost"] += 1
            what = "no record, and its task is no longer queued (see its log)"
        rows.append(f"  [task {i}] {d}: {what}")
    finish_state = "not submitted"
    if batch.finish_job:
        finish_state = queue_states(batch.finish_job).get(None) or _in_words(task_state(batch.finish_job))
    head = (f"batch {batch.folder} (array {batch.array_job}, finish job {batch.finish_job}), submitted "
            f"{batch.created_at[:16].replace('T', ' ')} UTC: {len(batch.dirs)} submissions in {len(batch.tasks)} "
            f"tasks; {counts['recorded']} recorded, {counts['running']} being evaluated, {counts['waiting']} "
            f"waiting, {counts['lost']} without a record")
    if counts["stopped"]:
        head += (f" ({counts['stopped']} stopped before they finished: evaluate ... --slurm --skip-evaluated "
                 "sends them again)")
    tail = f"  finish job (records of lost tasks, the leaderboard in {batch.board}): {finish_state}"
    return "\n".join([head, *rows, tail])


def queue_states(job: str) -> dict[int | None, str]:
    """The queued or running tasks of an array (task index -> state, with the run time or the reason
    it waits), or a plain job's (key None); empty once it left the queue."""
    out = _query(["squeue", "-h", "-r", "-j", job, "-o", "%K|%T|%M|%r"])
    states: dict[int | None, str] = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4:
            continue
        index, state, elapsed, reason = parts
        text = f"{state} for {elapsed}" if state == "RUNNING" else f"{state} ({reason})"
        states[int(index) if index.isdigit() else None] = text
    return states


def task_state(job: str) -> str:
    """A job's state as Slurm keeps it after it ended ("CANCELLED", "TIMEOUT", ...): `scontrol`
    while the controller remembers it (MinJobAge), else `sacct` where there is accounting, else
    "UNKNOWN"."""
    return _state(job)[0]


def _state(job: str) -> tuple[str, str]:
    """(JobState, Reason) of a job; ("UNKNOWN", "") when Slurm no longer knows it."""
    out = _query(["scontrol", "show", "job", "-o", job])
    if (m := re.search(r"\bJobState=(\S+)", out)) is not None:
        reason = re.search(r"\bReason=(\S+)", out)
        return m.group(1), reason.group(1) if reason else ""
    out = _query(["sacct", "-n", "-X", "-P", "-j", job, "-o", "State"])
    return (out.split()[0] if out.split() else "UNKNOWN"), ""


def job_here() -> str | None:
    """The Slurm job this process runs in, as a record names it: "slurm 4211_7" (array task) or "slurm 4211"."""
    if (array := os.environ.get("SLURM_ARRAY_JOB_ID")) and (i := os.environ.get("SLURM_ARRAY_TASK_ID")):
        return f"slurm {array}_{i}"
    return f"slurm {job}" if (job := os.environ.get("SLURM_JOB_ID")) else None


def why_stopped() -> str:
    """Why SIGTERM reached this judge, in words: the Slurm job's state (scancel, time limit,
    preemption), or a signal from outside Slurm. While its processes get SIGTERM a job is
    COMPLETING; its Reason then tells a time limit (TimeLimit) from an scancel or a preemption."""
    job = job_here()
    if job is None:
        return "SIGTERM: the judge was told to stop (kill)"
    state, reason = _state(os.environ.get("SLURM_JOB_ID", ""))
    name = job.split()[1]
    if state.split("+")[0] in STATES:
        return f"Slurm stopped job {name}: {_in_words(state)}"
    if reason == "TimeLimit":
        return f"Slurm stopped job {name}: {_in_words('TIMEOUT')}"
    if "preempt" in reason.lower():
        return f"Slurm stopped job {name}: {_in_words('PREEMPTED')}"
    return f"Slurm stopped job {name}: CANCELLED (scancel) or preempted, before its time limit"


def _in_words(state: str) -> str:
    base = state.split("+")[0]
    return f"{base}, {STATES[base]}" if base in STATES else base


def _script(path: Path, options: list[str], batch: Batch, command: str) -> None:
    lines = ["#!/bin/bash", *[f"#SBATCH {shlex.quote(o)}" for o in options],
             f"# part of the batch {batch.folder} (harness.cluster.slurm)", "set -euo pipefail",
             f"cd {shlex.quote(batch.workdir)}", command, ""]
    path.write_text("\n".join(lines))
    path.chmod(0o755)


def _sbatch(sbatch: str, argv: list[str]) -> str:
    done = subprocess.run([sbatch, "--parsable", *argv], capture_output=True, text=True, timeout=QUERY_S)
    if done.returncode != 0:
        raise SlurmError(f"sbatch refused {argv[-1]}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip().split(";")[0]  # "id" or "id;cluster"


def _query(argv: list[str]) -> str:
    exe = shutil.which(argv[0])
    if exe is None:
        return ""
    try:
        return subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=QUERY_S).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise SlurmError(f"{name} not found: --slurm needs Slurm's client commands on this machine (a cluster's "
                         "login node; see docs/cluster.md)")
    return exe


def describe(batch: Batch) -> str:
    """What `submit` did, in words, with the commands that follow a batch."""
    n = len(batch.dirs)
    return (f"submitted {n} submission{'s' if n != 1 else ''} in {len(batch.tasks)} task"
            f"{'s' if len(batch.tasks) != 1 else ''}: array job {batch.array_job}; finish job {batch.finish_job} "
            f"renders {batch.board} after it\n  batch folder: {batch.folder}\n"
            f"  how far it is: python -m harness slurm status {shlex.quote(batch.folder)}\n"
            f"  cancel it: scancel {batch.array_job} {batch.finish_job}")

