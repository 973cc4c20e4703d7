"""The machine's process table, read from /proc: the trees of processes the watch
(`harness.judge.watch`) holds to their limits, their memory, and signals to them. Plain functions
over `scan()`'s snapshot, a `Row` per process; no process of the worker is trusted to report on
itself."""

from __future__ import annotations

import os
from typing import NamedTuple

_PAGE = os.sysconf("SC_PAGE_SIZE")
_PSS_FROM = 64 * 2**20  # with several processes this large, count proportional (shared-once) memory


class Row(NamedTuple):
    """One process, as /proc/PID/stat shows it."""

    ppid: int  # its parent's pid
    threads: int  # its threads (each counts against the process limit)
    rss: int  # resident bytes
    start: int  # start time, in clock ticks after boot: with the pid, names one process for good
    state: bytes  # b"R", b"S", ... b"Z" for a zombie (exited, not yet reaped)


def scan() -> dict[int, Row]:
    """Every process on the machine: pid -> its `Row`."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = Row(ppid=int(fields[1]), threads=int(fields[17]), rss=int(fields[21]) * _PAGE,
                                     start=int(fields[19]), state=fields[0])
    return table


def descendants(table: dict[int, Row], roots: list[int]) -> dict[int, Row]:
    """The rows of `table` (from `scan`) for `roots` and every process below them."""
    children: dict[int, list[int]] = {}
    for pid, row in table.items():
        children.setdefault(row.ppid, []).append(pid)
    tree, todo = {}, list(roots)
    while todo:
        pid = todo.pop()
        if pid in table and pid not in tree:
            tree[pid] = table[pid]
            todo += children.get(pid, [])
    return tree


def memory(tree: dict[int, Row]) -> int:
    """Bytes held by the tree: resident sizes summed, but proportional sizes (pages shared after
    a fork counted once) when several large processes run."""
    large = [pid for pid, row in tree.items() if row.rss >= _PSS_FROM]
    if len(large) < 2:
        return sum(row.rss for row in tree.values())
    return sum(_pss(pid, row.rss) if pid in large else row.rss for pid, row in tree.items())


def _pss(pid: int, rss: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss


def signal_pid(pid: int, sig: int) -> None:
    """Send `sig` to `pid`, never to init nor to this process; a process already gone is no error."""
    if pid > 1 and pid != os.getpid():
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def alive(pid: int) -> bool:
    """Whether a process `pid` exists (perhaps another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
