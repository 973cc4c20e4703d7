"""Start a stage in a child process, hold it to its limits, and collect what it wrote.

The parent never imports the submission's code nor torch. A `Worker` makes a fresh scratch
folder and starts `python -m harness.build|measure JOB` (unconfined, under bubblewrap or in a
Docker container: `command()` is the single place that composes the command line), with its
output sent to a log file. `finish(job)` hands it its job file (stage 2 is started before its
job exists, so that its imports overlap stage 1) and watches it until it exits; `result` then
holds its `result.json`, read defensively.

While it runs, the parent watches the worker every `POLL_S` seconds: the resident memory
of all the processes of its tree and the count of their processes and threads (from /proc),
and the size of its log. At a limit (`sandbox.Limits`: time, memory, processes, output) it
stops the whole tree (SIGSTOP until no new process appears, so that a fork loop cannot
outrun it) and kills it, and `Outcome.killed` says which limit. Each worker also starts with
RLIMIT_FSIZE (no file beyond `scratch_mb`), no core dumps, and dies with the parent. Under
bubblewrap the worker is in its own PID namespace, so nothing it started survives the
sandbox's init; under docker the engine enforces memory and processes, and the runner
`docker kill`s the container at the end.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import sandbox
from .sandbox import Limits, Sandbox

POLL_S = 0.1  # seconds between two looks at the worker's process tree
MAX_RESULT_BYTES = 64 * 2**20  # a larger result.json is refused, not parsed
_LOG_TAIL = 4000  # characters of the worker's output kept for error messages
_PSS_FROM = 64 * 2**20  # with several processes this large, count proportional (shared-once) memory
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PR_SET_PDEATHSIG = 1


@dataclass
class Outcome:
    """What came back from one worker run."""

    result: dict | None  # its result.json, if it wrote a readable one
    returncode: int | None
    log: str  # tail of the worker's stdout and stderr
    killed: str | None = None  # which limit killed it, if one did
    seconds: float = 0.0
    problem: str | None = None  # why result.json was not read, when it was there


def command(stage: str, binds: dict[str, str], scratch: Path, box: Sandbox) -> list[str]:
    """The command line of `stage` in `box`, with `binds` (host -> inside, read-only) and its job in `scratch`."""
    if box.kind == "bwrap":
        return sandbox.bwrap_argv(stage, binds, scratch, box)
    if box.kind == "docker":
        return sandbox.docker_argv(stage, binds, scratch, box)
    return sandbox.worker_argv(sys.executable, stage, scratch / "job.json")


class Worker:
    """One stage's process: started at once, given its job by `finish`, always cleaned up by `close`."""

    def __init__(self, stage: str, box: Sandbox, binds: dict[str, str], job: dict | None = None):
        self.stage, self.box, self.binds = stage, box, binds
        self.scratch = Path(tempfile.mkdtemp(prefix=f"harness-{stage}-"))
        if job is not None:
            self._write_job(job)
        self.log = open(self.scratch / "worker.log", "wb")
        self.start = time.perf_counter()
        self.proc = subprocess.Popen(command(stage, binds, self.scratch, box), cwd=self.scratch,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **sandbox.WORKER_ENV}, start_new_session=True,
                                     preexec_fn=_child_limits(box.limits))
        self.watch = _Watch(self.proc, box, self.scratch, self.log)

    def inside(self, host: str | Path | None) -> str | None:
        """How the worker names a host path (its scratch folder or a bound path)."""
        if host is None or self.box.kind == "none":
            return None if host is None else str(host)
        if Path(host) == self.scratch or Path(host).parent == self.scratch:
            return str(Path(sandbox.SCRATCH) / Path(host).relative_to(self.scratch))
        return self.binds[str(host)]

    def finish(self, job: dict | None = None) -> Outcome:
        """Hand over `job` (unless given at the start), watch until the worker exits, read its result."""
        if job is not None:
            self._write_job(job)
        self.watch.deadline = time.perf_counter() + self.box.limits.timeout_s
        try:
            self.watch.until_done()
        finally:
            self.watch.kill()
            self.log.close()
        out = Outcome(result=None, returncode=self.proc.returncode, log=_tail(self.scratch / "worker.log"),
                      killed=self.watch.killed, seconds=time.perf_counter() - self.start)
        if out.killed is None:
            out.killed = _signal_limit(self.proc.returncode, self.box)
        if out.killed is None:
            out.result, out.problem = _read_result(self.scratch / "result.json")
        return out

    def cancel(self) -> None:
        """Stop the worker without waiting for it to finish."""
        self.watch.kill()
        self.log.close()

    def close(self) -> None:
        if self.proc.returncode is None:
            self.cancel()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _write_job(self, job: dict) -> None:
        tmp = self.scratch / ".job.json.tmp"
        tmp.write_text(json.dumps(job))
        tmp.replace(self.scratch / "job.json")


class _Watch:
    """Polls the worker's process tree against its limits; stops and kills the tree."""

    def __init__(self, proc: subprocess.Popen, box: Sandbox, scratch: Path, log):
        self.proc, self.box, self.limits, self.scratch, self.log = proc, box, box.limits, scratch, log
        self.deadline = time.perf_counter() + box.limits.timeout_s
        self.seen: dict[int, int] = {}  # pid -> start time, of every process ever found in the tree
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
            if os.fstat(self.log.fileno()).st_size >= self.limits.scratch_mb * 2**20:
                self.killed = f"file size limit of {self.limits.scratch_mb} MiB (its output reached it)"
                return
            if self.box.kind == "docker":
                continue  # the container's processes are the engine's; it enforces memory and processes
            tree = self._tree(_scan())
            tasks = sum(row[1] for row in tree.values())
            mb = _memory(tree) / 2**20
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
            fresh = set(self._tree(_scan())) - stopped
            for pid in fresh:
                _signal(pid, signal.SIGSTOP)
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
            _signal(pid, signal.SIGKILL)
        self.proc.wait()
        for _ in range(250):  # SIGKILL is asynchronous: return only once every process has exited
            if not self._alive():
                break
            time.sleep(0.02)
        if self.box.kind == "docker":
            subprocess.run(["docker", "kill", sandbox.container_name(self.scratch)],
                           capture_output=True, timeout=60, check=False)

    def _alive(self) -> list[int]:
        """Processes ever seen in the tree that still run (zombies have exited)."""
        table = _scan()
        return [pid for pid, start in self.seen.items() if pid in table and table[pid][3] == start
                and table[pid][4] != b"Z"]

    def _tree(self, table: dict) -> dict:
        """The worker and its descendants, plus any process seen in the tree before (orphans)."""
        roots = [pid for pid, start in self.seen.items() if pid in table and table[pid][3] == start]
        if self.proc.returncode is None:  # once reaped, its pid may belong to another process
            roots.append(self.proc.pid)
        tree = _descendants(table, roots)
        for pid, row in tree.items():
            self.seen.setdefault(pid, row[3])
        return tree


def _scan() -> dict[int, tuple]:
    """Every process on the machine: pid -> (parent pid, threads, resident bytes, start time, state)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[17]), int(fields[21]) * _PAGE, int(fields[19]), fields[0])
    return table


def tree_rss(root: int) -> int:
    """Resident bytes of process `root` and all its descendants now (0 once it is gone)."""
    return sum(row[2] for row in _descendants(_scan(), [root]).values())


def _descendants(table: dict, roots: list[int]) -> dict:
    """The rows of `table` (from `_scan`) for `roots` and every process below them."""
    children: dict[int, list[int]] = {}
    for pid, row in table.items():
        children.setdefault(row[0], []).append(pid)
    tree, todo = {}, list(roots)
    while todo:
        pid = todo.pop()
        if pid in table and pid not in tree:
            tree[pid] = table[pid]
            todo += children.get(pid, [])
    return tree


def _memory(tree: dict) -> int:
    """Bytes held by the tree: resident sizes summed, but proportional sizes (pages shared after
    a fork counted once) when several large processes run."""
    large = [pid for pid, row in tree.items() if row[2] >= _PSS_FROM]
    if len(large) < 2:
        return sum(row[2] for row in tree.values())
    return sum(_pss(pid, row[2]) if pid in large else row[2] for pid, row in tree.items())


def _pss(pid: int, rss: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss


def _signal(pid: int, sig: int) -> None:
    if pid > 1 and pid != os.getpid():
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


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


def _signal_limit(returncode: int | None, box: Sandbox) -> str | None:
    """The limit the docker engine enforced, read from the exit status."""
    if box.kind == "docker" and returncode == 137:
        return f"memory limit of {box.limits.memory_mb} MiB, most likely (the container was killed, status 137)"
    return None


def _read_result(path: Path) -> tuple[dict | None, str | None]:
    """result.json if the worker left a plain file of reasonable size there, else why not."""
    if not os.path.lexists(path):
        return None, None
    try:
        with _open_plain(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_RESULT_BYTES:
                return None, f"result.json is {size / 2**20:.0f} MiB, over the {MAX_RESULT_BYTES // 2**20} MiB allowed"
            result = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as err:
        return None, f"result.json is not a readable JSON file ({err})"
    if not isinstance(result, dict):
        return None, f"result.json holds {type(result).__name__}, not a mapping"
    return result, None


def _open_plain(path: Path):
    """Open a file the worker may have replaced: never through a link, never a FIFO or device."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path.name} is not a plain file")
    return os.fdopen(fd, "rb")


def _tail(path: Path) -> str:
    try:
        with _open_plain(path) as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _LOG_TAIL))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
