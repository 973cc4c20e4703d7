"""Several evaluations at once (`evaluate --jobs N`), and a batch stopped from outside.

`Pool(jobs)` judges up to `jobs` submissions at the same time, each in a thread of the parent:
a thread only waits on its submission's two sandboxed workers, which do the work, each held to
its own limits (time, memory, processes) by its own watch, as when judged alone. The records
are the same as one at a time: every submission is judged by the same `judge()`, with its own
temporary folders, its own random draws and its own workers. The workers' math libraries get
`cores // jobs` threads each (`OMP_NUM_THREADS`, unless set), so that N evaluations share the
cores instead of each taking all of them.

`Pool.run(items, judge_one)` yields `(index, result, seconds)` as each finishes. A batch stops
in two ways: Ctrl-C (SIGINT, raised as `KeyboardInterrupt`) and SIGTERM (raised as `Stopped`:
what `kill` sends, and what Slurm sends at a time limit, a preemption or an `scancel`, some
seconds before SIGKILL). The pool's handler only notes the signal (and no worker starts any
more); the loop raises at its next look, at most `POLL_S` later, never inside a lock, and kills
every worker (`runner.stop_all`). The results of submissions cut short are dropped (their workers were
killed by the stop, not by their own doing), and `Pool.running` names the submissions that were
being judged, so that the command line can record them as stopped.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

from . import runner

T = TypeVar("T")
R = TypeVar("R")
POLL_S = 0.5  # seconds between looks at the running evaluations (a signal interrupts the wait anyway)
EXIT_STOPPED = 128 + signal.SIGTERM  # the exit status of a batch stopped by SIGTERM, as a shell reports it
SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C: KeyboardInterrupt; SIGTERM: Stopped


class Stopped(BaseException):
    """SIGTERM reached the judge (a BaseException, as KeyboardInterrupt: nothing on the way catches it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Pool(Generic[T, R]):
    """Up to `jobs` evaluations at once; used as a context manager (it turns SIGTERM into `Stopped`)."""

    def __init__(self, jobs: int):
        if jobs < 1:
            raise ValueError("jobs must be at least 1")
        self.jobs = jobs
        self.running: dict[int, T] = {}  # index -> item, while being judged
        self.signum: int | None = None  # the stop signal received, raised at the loop's next look
        self._previous: dict[int, object] = {}
        self._threads_set = False

    def __enter__(self) -> Pool[T, R]:
        runner.stopping.clear()
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._note)
        if self.jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
            os.environ["OMP_NUM_THREADS"] = str(max(1, cores() // self.jobs))
            self._threads_set = True
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        if self._threads_set:
            os.environ.pop("OMP_NUM_THREADS", None)

    def _note(self, signum, frame) -> None:
        """The handler: note the signal, let no worker start; the loop raises at its next look and stops
        the workers (an exception raised in the handler itself could land inside a lock's bookkeeping)."""
        self.signum = signum
        runner.stopping.set()

    def _raise(self) -> None:
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is not None:
            raise Stopped(self.signum)

    def run(self, items: Iterable[T], judge_one: Callable[[T], R]) -> Iterator[tuple[int, R, float]]:
        """(index, judge_one(item), seconds) for each item, as each finishes; at most `jobs` at once."""
        todo = list(enumerate(items))
        todo.reverse()
        futures: dict[Future, tuple[int, float]] = {}
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="judge") as threads:
            try:
                while todo or futures:
                    while todo and len(futures) < self.jobs:
                        index, item = todo.pop()
                        self.running[index] = item
                        futures[threads.submit(judge_one, item)] = (index, time.perf_counter())
                    self._raise()
                    done, _ = wait(futures, timeout=POLL_S, return_when=FIRST_COMPLETED)
                    self._raise()
                    for future in done:
                        index, start = futures.pop(future)
                        result = future.result()
                        if runner.stopping.is_set():  # cut short by the stop: not its own result
                            continue
                        del self.running[index]
                        yield index, result, time.perf_counter() - start
            except BaseException:
                runner.stop_all()  # every worker killed; nothing more starts
                for future in futures:
                    future.cancel()
                raise

