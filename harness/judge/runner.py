"""Start a stage in a child process, hold it to its limits, and collect what it sent.

The parent never imports the submission's code nor torch. A `Worker` starts
`python -m harness.build|measure` (unconfined, under bubblewrap or in a Docker container:
`command()` is the single place that composes the command line) with three pipes
(`harness.wire`): its job goes in on stdin, its files (result.json, graph.pt2) come out on
stdout into the worker's host folder, each within its size, and its log on stderr, kept up to
`scratch_mb`. The worker itself writes nothing on the host's disk: inside a sandbox its
writable space is a tmpfs. `finish(job)` hands it its job (stage 2 is started before its job
exists, so that its imports overlap stage 1) and watches it until it exits.

While it runs, the parent watches the worker every `POLL_S` seconds: the resident memory
of all the processes of its tree and the count of their processes and threads (from /proc;
under docker, the container's processes, found from its first one), and the size of its log.
At a limit (`sandbox.Limits`: time, memory, processes, log) it stops the whole tree (SIGSTOP
until no new process appears, so that a fork loop cannot outrun it) and kills it, and
`Outcome.killed` names the limit, in the same words under every isolation. Each worker also
starts with RLIMIT_FSIZE (no file beyond `scratch_mb`), no core dumps, and dies with the
parent. Under bubblewrap the worker is in its own PID namespace, so nothing it started
survives the sandbox's init; under docker the runner `docker kill`s the container at the end,
the stage exits when its stdin closes, and `reap_orphans` removes containers whose judge died.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import wire
from ..jobs import GRAPH, RESULT
from . import procs, sandbox
from .sandbox import Limits, Sandbox

POLL_S = 0.1  # seconds between two looks at the worker's process tree
MAX_RESULT_BYTES = 16 * 2**20  # a larger result.json is refused, not parsed
MAX_GRAPH_BYTES = 4 * 2**30  # the largest exported program stage 1 may send (also within scratch_mb)
JOIN_S = 10  # seconds to wait for the readers of a worker's output once it has exited
_LOG_TAIL = 4000  # characters of the worker's output kept for error messages
_PR_SET_PDEATHSIG = 1
_PROGRESS = re.compile(rb"^" + wire.PROGRESS.encode() + rb" (\d{1,9})/(\d{1,9})$", re.MULTILINE)


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


def command(stage: str, binds: dict[str, str], name: str, box: Sandbox) -> list[str]:
    """The command line of `stage` in `box`, with `binds` (host -> inside, read-only); `name` names
    the container under docker."""
    if box.kind == "bwrap":
        return sandbox.bwrap_argv(stage, binds, box)
    if box.kind == "docker":
        return sandbox.docker_argv(stage, binds, name, box)
    return sandbox.worker_argv(sys.executable, stage)


class Worker:
    """One stage's process: started at once, given its job by `finish`, always cleaned up by `close`.

    `folder` is the parent's, on the host: the files the worker sent (`received/`), its log, and
    under isolation none its working folder (`work/`)."""

    def __init__(self, stage: str, box: Sandbox, binds: dict[str, str], job: dict | None = None,
                 progress=None):
        self.stage, self.box, self.binds = stage, box, binds
        self.folder = Path(tempfile.mkdtemp(prefix=f"harness-{stage}-"))
        (self.folder / "received").mkdir()
        self.work = self.folder / "work"
        self.work.mkdir()
        self.name = sandbox.container_name(self.folder)
        self.start = time.perf_counter()
        self.proc = subprocess.Popen(command(stage, binds, self.name, box), cwd=self.work,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=_environment(), start_new_session=True,
                                     preexec_fn=_child_limits(box.limits))
        expected = {RESULT: MAX_RESULT_BYTES}
        if stage == "build":
            expected[GRAPH] = min(MAX_GRAPH_BYTES, box.limits.scratch_mb * 2**20)
        self.received = wire.Receiver(self.proc.stdout, self.folder / "received", expected)
        self.log = _Log(self.proc.stderr, self.folder / "worker.log", box.limits.scratch_mb * 2**20, progress)
        self.watch = _Watch(self.proc, box, self.name, self.log)
        if job is not None:
            self._send(job)

    @property
    def out(self) -> str:
        """The worker's writable folder, as it names it."""
        return str(self.work) if self.box.kind == "none" else sandbox.SCRATCH

    def inside(self, host: str | Path | None) -> str | None:
        """How the worker names a host path: a bound path, or a path in a bound folder."""
        if host is None or self.box.kind == "none":
            return None if host is None else str(host)
        path = Path(host)
        for outside, inner in self.binds.items():
            if path == Path(outside):
                return inner
            if path.is_relative_to(outside):
                return f"{inner}/{path.relative_to(outside).as_posix()}"
        raise ValueError(f"{host} is not visible to the worker")

    def finish(self, job: dict | None = None) -> Outcome:
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
        if self.proc.returncode is None:
            self.cancel()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _send(self, job: dict) -> None:
        """The job line on the worker's stdin, which then stays open until the worker is done."""
        import json

        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):  # it has already exited (or been stopped): its outcome says why
            pass

    def _drain(self) -> None:
        """Wait for the readers to reach the end of the worker's output, then close its pipes."""
        self.received.join(JOIN_S)
        self.log.join(JOIN_S)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass


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


def reap_orphans() -> list[str]:
    """Kill worker containers left by judges of this host that have died (`sandbox.LABEL`); their names."""
    try:
        done = subprocess.run(["docker", "ps", "--filter", f"label={sandbox.LABEL}", "--format",
                               f'{{{{.Names}}}} {{{{.Label "{sandbox.LABEL}"}}}}'],
                              capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    host = os.uname().nodename
    dead = []
    for line in done.stdout.splitlines():
        name, _, parent = line.partition(" ")
        where, _, pid = parent.rpartition(":")
        if where == host and pid.isdigit() and not procs.alive(int(pid)):
            dead.append(name)
    if dead:
        subprocess.run(["docker", "kill", *dead], capture_output=True, timeout=60, check=False)
    return dead


class _Watch:
    """Polls the worker's process tree against its limits; stops and kills the tree."""

    def __init__(self, proc: subprocess.Popen, box: Sandbox, name: str, log: _Log):
        self.proc, self.box, self.limits, self.name, self.log = proc, box, box.limits, name, log
        self.deadline = time.perf_counter() + box.limits.timeout_s
        self.seen: dict[int, int] = {}  # pid -> start time, of every process ever found in the tree
        self.container: int | None = None  # under docker: the container's first process, once found
        self.killed: str | None = None

    def until_done(self) -> None:
        while True:
            try:
                self.proc.wait(timeout=POLL_S)
                return
            except subprocess.TimeoutExpired:
                pass
            if time.perf_counter() >= self.deadline:
                self.killed = f"time limit of {self.limits.timeout_s:g} s"
                return
            if self.log.full:
                self.killed = f"log limit of {self.limits.scratch_mb} MiB (its output reached it)"
                return
            if self.box.kind == "docker" and self.container is None:
                self.container = _container_pid(self.name)
            tree = self._tree(procs.scan())
            tasks = sum(row[1] for row in tree.values())
            mb = procs.memory(tree) / 2**20
            if tasks > self.limits.processes:
                self.killed = f"process limit of {self.limits.processes} (it had {tasks} processes and threads)"
                return
            if mb > self.limits.memory_mb:
                self.killed = f"memory limit of {self.limits.memory_mb} MiB (its processes held {mb:.0f} MiB)"
                return

    def kill(self) -> None:
        """Freeze every process of the tree until no new one appears (twice, a moment apart, so that a
        fork in flight lands), then kill them all."""
        stopped: set[int] = set()
        quiet = 0
        for _ in range(100):
            fresh = set(self._tree(procs.scan())) - stopped
            for pid in fresh:
                procs.signal_pid(pid, signal.SIGSTOP)
            stopped |= fresh
            quiet = 0 if fresh else quiet + 1
            if quiet == 2:
                break
            if not fresh:
                time.sleep(0.01)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in self._alive():
            procs.signal_pid(pid, signal.SIGKILL)
        self.proc.wait()
        for _ in range(250):  # SIGKILL is asynchronous: return only once every process has exited
            if not self._alive():
                break
            time.sleep(0.02)
        if self.box.kind == "docker":
            subprocess.run(["docker", "kill", self.name], capture_output=True, timeout=60, check=False)

    def _alive(self) -> list[int]:
        """Processes ever seen in the tree that still run (zombies have exited)."""
        table = procs.scan()
        return [pid for pid, start in self.seen.items() if pid in table and table[pid][3] == start
                and table[pid][4] != b"Z"]

    def _tree(self, table: dict) -> dict:
        """The worker and its descendants, plus any process seen in the tree before (orphans)."""
        roots = [pid for pid, start in self.seen.items() if pid in table and table[pid][3] == start]
        if self.proc.returncode is None:  # once reaped, its pid may belong to another process
            roots.append(self.proc.pid)
            if self.container is not None:  # under docker, the engine's child, not the client's
                roots.append(self.container)
        tree = procs.descendants(table, roots)
        for pid, row in tree.items():
            self.seen.setdefault(pid, row[3])
        return tree


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


def _container_pid(name: str) -> int | None:
    """The host pid of the container's first process, once it runs."""
    try:
        done = subprocess.run(["docker", "inspect", "--format", "{{.State.Pid}}", name], capture_output=True,
                              text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    pid = done.stdout.strip()
    return int(pid) if pid.isdigit() and int(pid) > 0 else None


def _signal_limit(returncode: int | None, box: Sandbox) -> str | None:
    """The limit a signal enforced, read from the exit status: the kernel's file size limit
    (SIGXFSZ), or docker's memory limit, standing a margin behind the runner's (status 137)."""
    if returncode in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
        return f"disk limit of {box.limits.scratch_mb} MiB (a file it wrote reached it)"
    if box.kind == "docker" and returncode == 137:
        return f"memory limit of {box.limits.memory_mb} MiB (the engine killed its container, status 137)"
    return None


def _read_result(path: Path) -> tuple[dict | None, str | None]:
    """result.json, as the receiver kept it (within its size), parsed with limits; else why not."""
    try:
        return wire.load(path.read_bytes()), None
    except (OSError, wire.WireError) as err:
        return None, f"result.json: {err}"
