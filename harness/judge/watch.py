"""The watch: holds one worker's process tree to its limits, and kills the whole tree.

Every `POLL_S` seconds, while the worker runs, `Watch.until_done` looks at its process tree in
the machine's process table (`procs`; no process of the worker reports on itself): the tree of
the process the runner started, any root its isolation names outside it (`Isolation.pid_of`:
docker's container, whose processes descend from the engine, not from the client) and every
process ever seen in the tree (orphans re-parented away stay watched). It checks the wall clock,
the size of the log, the count of processes and threads, and the resident memory of all of them
(`procs.memory`); at the first limit passed it stops with `killed` naming it, in the same words
under every isolation. `kill()` then freezes every process of the tree (SIGSTOP until no new one
appears, so that a fork loop cannot outrun it), kills them all, waits until none runs, and lets
the isolation end what remains (`Isolation.stop`: docker kills the container).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from . import procs
from .isolation import Isolation

POLL_S = 0.1  # seconds between two looks at the worker's process tree


class Watch:
    """Polls the tree of `proc` (the worker the runner started in `box`, named `name`) against
    `box.limits` and the log's (`log.full`: its output reached `scratch_mb`); stops and kills the tree.
    `deadline` (perf_counter seconds) is the wall-clock limit, from the start unless set anew."""

    def __init__(self, proc: subprocess.Popen, box: Isolation, name: str, log):
        self.proc, self.box, self.limits, self.name, self.log = proc, box, box.limits, name, log
        self.deadline = time.perf_counter() + box.limits.timeout_s
        self.seen: dict[int, int] = {}  # pid -> start time, of every process ever found in the tree
        self.root: int | None = None  # a root outside the worker's own tree (the isolation's `pid_of`), once found
        self.killed: str | None = None

    def until_done(self) -> None:
        """Return when the worker has exited, or with `killed` set at the first limit it passed."""
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
            if self.root is None:
                self.root = self.box.pid_of(self.name)
            tree = self._tree(procs.scan())
            tasks = sum(row.threads for row in tree.values())
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
        self.box.stop(self.name)

    def _alive(self) -> list[int]:
        """Processes ever seen in the tree that still run (zombies have exited)."""
        table = procs.scan()
        return [pid for pid, start in self.seen.items() if pid in table and table[pid].start == start
                and table[pid].state != b"Z"]

    def _tree(self, table: dict[int, procs.Row]) -> dict[int, procs.Row]:
        """The worker and its descendants, plus any process seen in the tree before (orphans)."""
        roots = [pid for pid, start in self.seen.items() if pid in table and table[pid].start == start]
        if self.proc.returncode is None:  # once reaped, its pid may belong to another process
            roots.append(self.proc.pid)
            if self.root is not None:  # e.g. under docker, the engine's child, not the client's
                roots.append(self.root)
        tree = procs.descendants(table, roots)
        for pid, row in tree.items():
            self.seen.setdefault(pid, row.start)
        return tree
