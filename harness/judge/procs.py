"""The machine's process table, read from /proc: the trees of processes the runner watches, their
memory, and signals to them. Plain functions over `scan()`'s snapshot; no process of the worker
is trusted to report on itself."""

from __future__ import annotations

import os

_PAGE = os.sysconf("SC_PAGE_SIZE")
_PSS_FROM = 64 * 2**20  # with several processes this large, count proportional (shared-once) memory


def scan() -> dict[int, tuple]:
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
    return sum(row[2] for row in descendants(scan(), [root]).values())


def descendants(table: dict, roots: list[int]) -> dict:
    """The rows of `table` (from `scan`) for `roots` and every process below them."""
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


def memory(tree: dict) -> int:
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


def signal_pid(pid: int, sig: int) -> None:
    if pid > 1 and pid != os.getpid():
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
