"""How bytes cross between the judge (parent) and a stage: the job in on stdin, files out on stdout.

    parent --stdin:  one line, the job (JSON)--> stage   (stdin then stays open: its end means the
                                                          parent is gone, and the stage exits)
    parent <--stdout: FILE <name> <size>\\n + bytes, ...-- stage   (result.json, graph.pt2)
    parent <--stderr: the log ----------------------- stage   (with stage 2's progress lines)

A stage calls `start()` before any other code runs: it keeps the stdout it was given as its
channel and points file descriptor 1 at the log, so that what a submission prints lands in
the log. Everything a stage writes is untrusted: the parent's `Receiver` takes only the names
it expects, each within its size, and `load` parses JSON only within a nesting depth. Nothing
of the host's disk is written by a stage: its files live in its own tmpfs until sent.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from pathlib import Path
from typing import IO, BinaryIO

PROGRESS = "harness-progress"  # a line `harness-progress DONE/TOTAL` in stage 2's log: images predicted
MAX_JOB_BYTES = 4 * 2**20  # the largest job line a stage reads
MAX_DEPTH = 32  # deepest nesting of lists and mappings `load` parses
CHUNK = 2**20  # bytes per read or write
_HEADER = re.compile(rb"FILE ([A-Za-z0-9_.-]{1,64}) (\d{1,12})\n")
_HEADER_MAX = 96  # bytes of a header line


class WireError(ValueError):
    """What came across is not what the protocol allows."""


# -- the stage's side ---------------------------------------------------------------------------


def start(stdin: BinaryIO | None = None) -> tuple[bytes, BinaryIO]:
    """In a stage, first: take stdout as the channel, send prints to the log, read the job line,
    and exit when stdin closes (the parent is gone). Returns (job bytes, channel)."""
    channel = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    stdin = stdin or sys.stdin.buffer
    line = stdin.readline(MAX_JOB_BYTES + 1)
    if not line.endswith(b"\n"):
        raise WireError("no complete job line on stdin")
    threading.Thread(target=_exit_at_eof, args=(stdin,), daemon=True).start()
    return line, channel


def _exit_at_eof(stdin: BinaryIO) -> None:
    while stdin.read(CHUNK):
        pass
    os._exit(3)  # the parent closed our stdin before we finished: it is gone, or gave up on us


def send(channel: BinaryIO, name: str, data: bytes) -> None:
    """One file on the channel."""
    channel.write(f"FILE {name} {len(data)}\n".encode() + data)


def send_file(channel: BinaryIO, name: str, path: Path) -> None:
    """One file on the channel, streamed from disk."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        channel.write(f"FILE {name} {size}\n".encode())
        left = size
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise WireError(f"{name} shrank while being sent")
            channel.write(chunk)
            left -= len(chunk)


# -- the parent's side --------------------------------------------------------------------------


class Receiver:
    """Reads a stage's stdout in a thread: each expected file, within its size, into `folder`.

    `limits` maps each name the stage may send to its largest size in bytes. A name not
    expected, a file sent twice, a size over its limit or bytes that are not a header end the
    reading: `problem` says why, and the rest of the stream is drained unread."""

    def __init__(self, stream: IO[bytes], folder: Path, limits: dict[str, int]):
        self.stream, self.folder, self.limits = stream, folder, limits
        self.files: dict[str, Path] = {}
        self.problem: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def _run(self) -> None:
        try:
            while self._one():
                pass
        except WireError as err:
            self.problem = str(err)
        except OSError as err:
            self.problem = f"its output could not be read ({err})"
        try:
            while self.stream.read(CHUNK):
                pass
        except (OSError, ValueError):
            pass

    def _one(self) -> bool:
        header = self.stream.readline(_HEADER_MAX)
        if not header:
            return False
        match = _HEADER.fullmatch(header)
        if not match:
            raise WireError(f"its output is not the harness's protocol (it began {header[:40]!r})")
        name, size = match.group(1).decode(), int(match.group(2))
        if name not in self.limits:
            raise WireError(f"it sent a file {name!r}, which is not expected")
        if name in self.files:
            raise WireError(f"it sent {name} twice")
        if size > self.limits[name]:
            raise WireError(f"it sent a {name} of {size / 2**20:.1f} MiB, over the "
                            f"{self.limits[name] / 2**20:.0f} MiB allowed")
        path = self.folder / name
        with open(path, "wb") as f:
            left = size
            while left:
                chunk = self.stream.read(min(CHUNK, left))
                if not chunk:
                    raise WireError(f"its output ended inside {name}")
                f.write(chunk)
                left -= len(chunk)
        self.files[name] = path
        return True


def load(data: bytes) -> dict:
    """A JSON mapping from untrusted bytes: UTF-8, nested at most `MAX_DEPTH` deep; else WireError.
    (Python's parser itself stops, with RecursionError, about a thousand levels down.)"""
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # bad UTF-8 or JSON, too deep, integers of over 4,300 digits
        raise WireError(f"not valid JSON ({type(err).__name__}: {str(err)[:200]})") from None
    if not isinstance(value, dict):
        raise WireError(f"it holds {type(value).__name__}, not a mapping")
    depth = _depth(value)
    if depth > MAX_DEPTH:
        raise WireError(f"it nests {depth} levels deep, more than the {MAX_DEPTH} allowed")
    return value


def _depth(value) -> int:
    """Deepest nesting of lists and mappings in a parsed value, without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            todo += [(v, level + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest
