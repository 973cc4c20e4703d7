"""Start a stage in a child process, hold it to its limits, and collect what it sent.

The parent never imports the submission's code nor torch. A `Worker` starts
`python -m harness.export|measure` in its isolation (`harness.judge.isolation.Isolation`:
unconfined, under bubblewrap or in a Docker container; its `argv()` composes the command line,
its `out()` and `inside()` name the paths the worker sees) with three pipes (`harness.wire`):
its job goes in on stdin, its files (result.json, graph.pt2) come out on stdout into the
worker's host folder, each within its size, and its log on stderr, kept up to `scratch_mb`.
The worker itself writes nothing on the host's disk: inside a sandbox its writable space is a
tmpfs. `finish(job)` hands it its job (stage 2 is started before its job exists, so that its
imports overlap stage 1) and watches it until it exits.

While it runs, `harness.judge.watch` holds the worker's process tree to its limits
(`Limits`: time, memory, processes, log) and at a limit kills the whole tree; `Outcome.killed`
names the limit, in the same words under every isolation, or the limit a signal enforced (the
kernel's file size limit; the isolation's own, `Isolation.killed_by`). Each worker also starts
with RLIMIT_FSIZE (no file beyond `scratch_mb`), no core dumps, and dies with the parent. Under
bubblewrap the worker is in its own PID namespace, so nothing it started survives the sandbox's
init; under docker the watch `docker kill`s the container at the end, the stage exits when its
stdin closes, and `Isolation.reap_orphans` removes containers whose judge died.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .. import wire
from ..jobs import GRAPH, RESULT, BuildJob, MeasureJob
from . import sandbox
from .isolation import Isolation, Limits
from .watch import Watch

MAX_RESULT_BYTES = 16 * 2**20  # a larger result.json is refused, not parsed
MAX_GRAPH_BYTES = 4 * 2**30  # the largest exported program stage 1 may send (also within scratch_mb)
JOIN_S = 10  # seconds to wait for the readers of a worker's output once it has exited
_LOG_TAIL = 4000  # characters of the worker's output kept for error messages
_PR_SET_PDEATHSIG = 1
_PROGRESS = re.compile(rb"^" + wire.PROGRESS.encode() + rb" (\d{1,9})/(\d{1,9})$", re.MULTILINE)


Job = BuildJob | MeasureJob  # what a stage is given (harness.jobs), sent as one JSON line
stopping = threading.Event()  # set when the batch stops (Ctrl-C, SIGTERM): no worker starts any more
_live: set[Worker] = set()  # the workers started and not yet closed, of every thread
_live_lock = threading.Lock()


def stop_all() -> None:
    """Stop the batch: kill every running worker, of every thread, and start no more."""
    stopping.set()
    with _live_lock:
        live = list(_live)
    for worker in live:
        worker.cancel()


@dataclass
class Outcome:
    """What came back from one worker run."""

    result: dict | None  # its result.json, if it sent a readable one
    returncode: int | None
    log: str  # tail of the worker's stderr (and of what its code printed)
    killed: str | None = None  # which limit killed it, if one did
    seconds: float = 0.0
    problem: str | None = None  # why what it sent was not used
    files: dict[str, Path] = field(default_factory=dict)  # the files it sent (result.json, graph.pt2), on the host


class Worker:
    """One stage's process: started at once, given its job by `finish`, always cleaned up by `close`.

    `folder` is the parent's, on the host: the files the worker sent (`received/`), its log, and
    under isolation none its working folder (`work/`)."""

    def __init__(self, stage: str, box: Isolation, binds: dict[str, str], job: Job | None = None,
                 progress=None):
        if stopping.is_set():
            raise RuntimeError("the judge is stopping: no worker starts")  # its result is dropped (harness.judge.pool)
        self.stage, self.box, self.binds = stage, box, binds
        self.folder = Path(tempfile.mkdtemp(prefix=f"harness-{stage}-"))
        (self.folder / "received").mkdir()
        self.work = self.folder / "work"
        self.work.mkdir()
        self.name = sandbox.container_name(self.folder)
        self.start = time.perf_counter()
        self.proc = subprocess.Popen(box.argv(stage, binds, self.name), cwd=self.work,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=_environment(), start_new_session=True,
                                     preexec_fn=_child_limits(box.limits))
        expected = {RESULT: MAX_RESULT_BYTES}
        if stage == "export":
            expected[GRAPH] = min(MAX_GRAPH_BYTES, box.limits.scratch_mb * 2**20)
        self.stdin = _pipe(self.proc.stdin)
        self.received = wire.Receiver(_pipe(self.proc.stdout), self.folder / "received", expected)
        self.log = _Log(self.proc.stderr, self.folder / "worker.log", box.limits.scratch_mb * 2**20, progress)
        self.watch = Watch(self.proc, box, self.name, self.log)
        with _live_lock:
            _live.add(self)
        if job is not None:
            self._send(job)

    @property
    def out(self) -> str:
        """The worker's writable folder, as it names it."""
        return self.box.out(self.work)

    def inside(self, host: str | Path) -> str:
        """How the worker names a host path: a bound path, or a path in a bound folder (sandboxed)."""
        return self.box.inside(host, self.binds)

    def finish(self, job: Job | None = None) -> Outcome:
        """Hand over `job` (unless given at the start), watch until the worker exits, read what it sent."""
        if job is not None:
            self._send(job)
        self.watch.deadline = time.perf_counter() + self.box.limits.timeout_s
        try:
            self.watch.until_done()
        finally:
            self.watch.kill()
            self._drain()
        out = Outcome(result=None, returncode=self.proc.returncode, log=self.log.tail(),
                      killed=self.watch.killed, seconds=time.perf_counter() - self.start)
        if out.killed is None:
            out.killed = _signal_limit(self.proc.returncode, self.box)
        if out.killed is None:
            out.problem = self.received.problem
            out.files = dict(self.received.files)
            if out.problem is None and RESULT in out.files:
                out.result, out.problem = _read_result(out.files[RESULT])
        return out

    def cancel(self) -> None:
        """Stop the worker without waiting for it to finish."""
        self.watch.kill()
        self._drain()

    def close(self) -> None:
        with _live_lock:
            _live.discard(self)
        if self.proc.returncode is None:
            self.cancel()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _send(self, job: Job) -> None:
        """The job line on the worker's stdin, which then stays open until the worker is done."""
        try:
            self.stdin.write(job.model_dump_json().encode() + b"\n")
            self.stdin.flush()
        except (BrokenPipeError, ValueError):  # it has already exited (or been stopped): its outcome says why
            pass

    def _drain(self) -> None:
        """Wait for the readers to reach the end of the worker's output, then close its pipes."""
        self.received.join(JOIN_S)
        self.log.join(JOIN_S)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass


def _pipe(pipe: IO[bytes] | None) -> IO[bytes]:
    """A pipe Popen was asked for (PIPE), which it always opens."""
    if pipe is None:
        raise RuntimeError("the worker was started without its pipes")  # a harness bug: an error record
    return pipe


def _environment() -> dict[str, str]:
    """The worker's environment (isolation none; the sandboxes clear it): the parent's, the worker's
    settings, and this harness package first on the path, so that the stages run the parent's code."""
    package = str(sandbox.package_dir().parent)
    path = os.pathsep.join(p for p in (package, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, **sandbox.WORKER_ENV, "PYTHONPATH": path}


class _Log:
    """Copies the worker's stderr into its log file, up to `cap` bytes; past it, `full` is set (the
    watch kills the worker) and the rest is dropped. `progress(done, total)` is called for each
    progress line (`wire.PROGRESS`) seen."""

    def __init__(self, stream, path: Path, cap: int, progress=None):
        self.stream, self.path, self.cap, self.progress = stream, path, cap, progress
        self.size, self.full = 0, False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with open(self.path, "wb") as f:
            try:
                while chunk := self.stream.read1(wire.CHUNK):
                    if self.size < self.cap:
                        f.write(chunk[: self.cap - self.size])
                        f.flush()
                    self.size += len(chunk)
                    self.full = self.size >= self.cap
                    if self.progress is not None and (seen := _PROGRESS.findall(chunk)):
                        self.progress(*map(int, seen[-1]))
            except (OSError, ValueError):
                pass

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def tail(self) -> str:
        try:
            with open(self.path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - _LOG_TAIL))
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""


def _child_limits(limits: Limits):
    """Set in the child before exec: file size limit, no core dumps, killed if the parent dies."""
    fsize = limits.scratch_mb * 2**20
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None

    def setup() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return setup


def _signal_limit(returncode: int | None, box: Isolation) -> str | None:
    """The limit a signal enforced, read from the exit status: the kernel's file size limit
    (SIGXFSZ), or one the isolation enforced (docker's memory limit, a margin behind the watch's:
    status 137)."""
    if returncode in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
        return f"disk limit of {box.limits.scratch_mb} MiB (a file it wrote reached it)"
    return box.killed_by(returncode)


def _read_result(path: Path) -> tuple[dict | None, str | None]:
    """result.json, as the receiver kept it (within its size), parsed with limits; else why not."""
    try:
        return wire.load(path.read_bytes()), None
    except (OSError, wire.WireError) as err:
        return None, f"result.json: {err}"
