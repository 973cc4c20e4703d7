"""Start the worker in a child process and collect what it wrote, killing it at its time limit.

The parent never imports the submission's code nor torch. It writes a job file into a
fresh scratch folder, runs `python -m harness.worker JOB` there with its output sent to a
log file, and reads `result.json` back. `command()` is the single place that composes the
worker's command line, so that a sandbox can wrap it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_LOG_TAIL = 4000  # characters of the worker's output kept for error messages


@dataclass
class Outcome:
    """What came back from one worker run."""

    result: dict | None  # the worker's result.json, if it wrote one
    returncode: int | None
    log: str  # tail of the worker's stdout and stderr
    killed: str | None = None  # which limit killed it, if one did
    seconds: float = 0.0


def command(job_path: Path) -> list[str]:
    """The worker's command line (without sandboxing)."""
    return [sys.executable, "-m", "harness.worker", str(job_path)]


def run(job: dict, timeout_s: float) -> Outcome:
    """Run the worker on `job` (which gets its `out` folder here) and collect its outcome."""
    with tempfile.TemporaryDirectory(prefix="harness-") as scratch:
        folder = Path(scratch)
        job = {**job, "out": str(folder)}
        job_path = folder / "job.json"
        job_path.write_text(json.dumps(job))
        log_path = folder / "worker.log"
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
        start = time.perf_counter()
        killed = None
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command(job_path), cwd=folder, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                killed = f"time limit of {timeout_s:g} s"
            finally:
                _kill_group(proc)
        seconds = time.perf_counter() - start
        result_path = folder / "result.json"
        result = None
        if result_path.is_file() and killed is None:
            try:
                result = json.loads(result_path.read_text())
            except (OSError, ValueError):
                result = None
        return Outcome(result=result, returncode=proc.returncode, log=_tail(log_path), killed=killed,
                       seconds=seconds)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the worker and everything it started (it leads its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _LOG_TAIL))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
