"""A submission directory as the parent reads it: never through a link, never a special file,
within a size.

`read(folder, max_bytes)` walks the directory without following links, and refuses, with a
message naming the path, what it will not read on a submission's behalf: a link whose target
lies outside the directory, a FIFO, socket or device, more than `MAX_ENTRIES` entries, more
than `max_bytes` of files (`submission_mb` in the competition config), a manifest over
`MANIFEST_BYTES` or not a regular file. Links within the directory are recorded (their target
hashed), not followed. Regular files are hashed as streams, each opened without following
links and checked to be the file the walk saw; the manifest's bytes are kept, so that it is
read and parsed once.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SubmissionError
from ..manifest import MANIFEST

MAX_ENTRIES = 10_000  # files, folders and links in one submission
MANIFEST_BYTES = 64 * 2**10  # the largest submission.yaml
NOT_HASHED = ("__pycache__", ".git")  # folders checked and counted, but left out of the hashes
_CHUNK = 2**20  # bytes hashed at a time


@dataclass
class Files:
    """What the walk found: hashes by relative path, the manifest's bytes, the total size."""

    hashes: dict[str, str] = field(default_factory=dict)
    manifest: bytes | None = None
    total: int = 0  # bytes of regular files


def read(folder: str | Path, max_bytes: int) -> Files:
    """Walk, check and hash the submission directory `folder` (see the module's docstring)."""
    top = Path(folder)
    if not top.is_dir():
        raise SubmissionError(f"{top}: not a directory")
    root = Path(os.path.realpath(top))
    found = Files()
    entries = 0
    todo = [root]
    while todo:
        here = todo.pop()
        with os.scandir(here) as listing:
            items = sorted(listing, key=lambda e: e.name)
        for entry in items:
            entries += 1
            if entries > MAX_ENTRIES:
                raise SubmissionError(f"{top}: more than {MAX_ENTRIES:,} files and folders; submit only what "
                                      "the model needs")
            path = Path(entry.path)
            rel = path.relative_to(root).as_posix()
            hashed = not any(part in NOT_HASHED for part in Path(rel).parts)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                _check_link(top, root, path, rel)
                if hashed:
                    found.hashes[rel] = "link:" + hashlib.sha256(os.readlink(path).encode()).hexdigest()
            elif stat.S_ISDIR(st.st_mode):
                todo.append(path)
            elif stat.S_ISREG(st.st_mode):
                found.total += st.st_size
                if found.total > max_bytes:
                    raise SubmissionError(f"{top}: its files hold more than {max_bytes / 2**20:,.0f} MiB (the "
                                          "competition's submission_mb); submit only what the model needs")
                if rel == MANIFEST:
                    found.manifest = _manifest(top, path, st)
                if hashed:
                    found.hashes[rel] = _sha256(path, st)
            else:
                raise SubmissionError(f"{top / rel}: a {_kind(st.st_mode)}; a submission holds only files, "
                                      "folders and links within it")
    if found.manifest is None and os.path.lexists(root / MANIFEST) and (root / MANIFEST).is_symlink():
        raise SubmissionError(f"{top / MANIFEST}: a link; the manifest must be a regular file")
    found.hashes = dict(sorted(found.hashes.items()))
    return found


def manifest_only(folder: str | Path) -> bytes | None:
    """The manifest's bytes when it is a regular file within its size, else None: to name the team
    of a submission the walk refused."""
    path = Path(folder) / MANIFEST
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MANIFEST_BYTES:
            return None
        with _open(path, st) as f:
            return f.read(MANIFEST_BYTES)
    except (OSError, SubmissionError):
        return None


def combine(hashes: dict[str, str]) -> str:
    """One sha256 over the files' paths and hashes: the submission's identity."""
    digest = hashlib.sha256()
    for rel, sha in sorted(hashes.items()):
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest()


def identity(directory: str | Path, limit: int) -> str | None:
    """The submission's sha256 over its files (`combine`), or None when they cannot be read within
    `limit` bytes (it is then judged, and its record says why)."""
    try:
        return combine(read(directory, limit).hashes)
    except (SubmissionError, OSError):
        return None


def _check_link(top: Path, root: Path, path: Path, rel: str) -> None:
    target = os.readlink(path)
    resolved = Path(os.path.realpath(path))
    if resolved != root and not resolved.is_relative_to(root):
        raise SubmissionError(f"{top / rel}: a link to {target}, outside the submission directory; the judge "
                              "reads nothing outside it: copy the file in instead")


def _manifest(top: Path, path: Path, st: os.stat_result) -> bytes:
    if st.st_size > MANIFEST_BYTES:
        raise SubmissionError(f"{top / MANIFEST}: {st.st_size / 2**10:,.0f} KiB, more than the "
                              f"{MANIFEST_BYTES // 2**10} KiB a manifest may hold")
    with _open(path, st) as f:
        return f.read(MANIFEST_BYTES + 1)[:MANIFEST_BYTES]


def _sha256(path: Path, st: os.stat_result) -> str:
    digest = hashlib.sha256()
    with _open(path, st) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _open(path: Path, st: os.stat_result):
    """Open the regular file the walk saw, never through a link, never blocking on a FIFO swapped in."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise SubmissionError(f"{path}: cannot be read ({err.strerror})") from None
    now = os.fstat(fd)
    if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise SubmissionError(f"{path}: changed while the judge read it")
    return os.fdopen(fd, "rb")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"
