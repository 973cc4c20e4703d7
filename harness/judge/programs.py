"""The exported programs kept for a later judgement of the same submission: stage 1 is not run again.

Stage 1 (`harness.export`) turns a submission's files into one exported program, `graph.pt2`, and
that program depends on nothing else than

* the submission's files (`files.combine`, the record's `provenance.submission_sha256`: every file
  of the folder, its manifest too, by path and content),
* the harness code stage 1 runs (`harness_identity()`: the harness's version and a sha256 over the
  source of `harness/export/` and of the ground-floor modules it imports, `STAGE_ONE`), and
* the environment it runs in (`Isolation.environment()`: the isolation, its limits, and Python and
  the packages a submission may import, or under docker the image's id).

`key()` is a sha256 over the three. When a submission is judged again with the same key (on the
GPU after the students' runs, with the private images at the end of term, under new thresholds),
the judge (`evaluate._stages`) copies the kept program into stage 2's inbox instead of running
stage 1; stage 2 reads it as untrusted, exactly as a program stage 1 has just sent, and the record
says so (`provenance.program`: exported | reused; no `build` timing when reused). Only a program
stage 1 sent whole is kept: a failed stage 1 is never kept, and it runs again the next time.
`reuse_programs: false` in the competition config (the command line's `evaluate --no-reuse`)
exports afresh; the fresh program then replaces the kept one.

The programs lie in `folder()` (`programs/` in the harness's cache folder, `$HARNESS_CACHE` or
~/.cache/cifar10-harness), one file per key, written atomically (a temporary file, then renamed),
at most `PROGRAMS_MB` together: past it, the least recently used go (a reuse counts as a use). A
folder that cannot be written costs the reuse, never the evaluation: a warning in the log.

What this trusts: the folder. A kept program is as hostile as any program stage 1 sends (stage 2
checks it the same; one it refuses is dropped and the submission judged afresh, stage 1 included,
so that a damaged file decides no verdict), but nothing
checks that it is the program of ITS submission: whoever can write the judge's cache folder can
have one submission judged as another's model. The sandboxes never show the cache folder to a
stage (under `bwrap` and `docker`); under isolation `none`, which is for trusted code only, a
submission's code could write there, as it could read the test labels beside it. The isolation
is part of the key, so a program exported unconfined is never reused in a sandboxed judgement,
and the limits are too, so that a program exported under looser limits is not reused under
tighter ones. Files the judge does not hash (`files.NOT_HASHED`: `__pycache__`, `.git`) are no part
of the key: what they change stage 1 may not see again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import tempfile
import time
from pathlib import Path

from .. import __version__
from ..data import cache_dir

PROGRAMS_MB = 2048  # MiB: the most the kept programs may hold together; past it the least recently used go
SUFFIX = ".pt2"
STALE_S = 3600  # seconds: a temporary file this old was left by a judge that died while writing it
# What stage 1 runs of the harness, relative to the package: harness/export/ and the ground-floor
# modules it imports (tests/test_programs.py checks this list against the imports of harness/export/).
STAGE_ONE = ("__init__.py", "export", "errors.py", "jobs.py", "manifest.py", "ops.py", "record.py", "stage.py",
             "text.py", "wire.py", "yamlfile.py")
_KEY = re.compile(r"[0-9a-f]{64}")
_log = logging.getLogger(__name__)


def folder() -> Path:
    """Where the programs are kept: `programs/` in the harness's cache folder."""
    return cache_dir() / "programs"


@functools.lru_cache(maxsize=1)
def harness_identity() -> str:
    """The harness code stage 1 runs: its version and a sha256 over the source files in `STAGE_ONE`."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in STAGE_ONE:
        path = package / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(f"{file.relative_to(package).as_posix()}\0".encode())
            digest.update(file.read_bytes())
            digest.update(b"\0")
    return f"harness {__version__} {digest.hexdigest()}"


def key(submission_sha256: str, environment: str) -> str:
    """The key of the program stage 1 exports: a sha256 over the submission's files (their combined
    hash), the harness code stage 1 runs and the environment it runs in (`Isolation.environment()`)."""
    digest = hashlib.sha256()
    for part in ("cifar10-harness exported program 1", submission_sha256, harness_identity(), environment):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


class Programs:
    """The kept programs in `root`, by key; at most `cap_mb` MiB of them (default `PROGRAMS_MB`)."""

    def __init__(self, root: str | Path, cap_mb: float | None = None):
        self.root = Path(root)
        self.cap = int((PROGRAMS_MB if cap_mb is None else cap_mb) * 2**20)  # bytes

    def path(self, k: str) -> Path:
        if not _KEY.fullmatch(k):
            raise ValueError(f"not a program key: {k!r}")
        return self.root / f"{k}{SUFFIX}"

    def get(self, k: str) -> Path | None:
        """The kept program of key `k`, marked as just used; None when there is none."""
        path = self.path(k)
        try:
            os.utime(path)  # the use that eviction goes by
            return path if path.is_file() else None
        except OSError:
            return None

    def put(self, k: str, graph: Path) -> None:
        """Keep a copy of `graph` under key `k` (replacing one kept before), then evict the least recently
        used programs past the cap. Never raises for the folder: a failure is a warning in the log."""
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=self.root)
            with os.fdopen(fd, "wb") as out, open(graph, "rb") as src:
                while chunk := src.read(2**20):
                    out.write(chunk)
            os.replace(tmp, self.path(k))
            tmp = None
            self.evict()
        except OSError as err:
            _log.warning("the exported program was not kept for a later judgement (%s): %s", self.root, err)
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def evict(self) -> list[Path]:
        """Remove the least recently used programs until the rest hold at most the cap, and temporary
        files left by judges that died while writing; the programs removed."""
        kept: list[tuple[float, int, Path]] = []
        now = time.time()
        for entry in os.scandir(self.root):
            try:
                st = entry.stat(follow_symlinks=False)
                if entry.name.startswith(".tmp-") and entry.name.endswith(".part"):
                    if now - st.st_mtime > STALE_S:
                        os.unlink(entry.path)
                elif entry.is_file(follow_symlinks=False) and entry.name.endswith(SUFFIX):
                    kept.append((st.st_mtime, st.st_size, Path(entry.path)))
            except OSError:  # removed meanwhile, by another judge
                continue
        total = sum(size for _, size, _ in kept)
        gone = []
        for _, size, path in sorted(kept, key=lambda t: t[0]):
            if total <= self.cap:
                break
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            total -= size
            gone.append(path)
        return gone
