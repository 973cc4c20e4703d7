"""One runtime for both stages: the job in, the result or a failure out, the exit status.

    python -m harness.export   stage 1: `serve(BuildJob, work)`, work sends graph.pt2
    python -m harness.measure  stage 2: `serve(MeasureJob, work)`, work sends a MeasureResult

`serve` waits for the job on stdin (`harness.wire`), validates it, runs `work(job)`, and sends what
it returns: files by name, or a message (`harness.jobs`) as `result.json`. Anything `work` raises
becomes a `Failure` (its kind from the exception: invalid for a refusal, error for the rest; the
disk-full case named), sent as `result.json`, and the exit status says the same: 0 done,
2 invalid submission, 3 failed.
"""

from __future__ import annotations

import errno
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from . import wire
from .errors import EXIT_ERROR, EXIT_INVALID, HarnessError
from .jobs import RESULT, Failure
from .text import plain

FULL_BELOW = 2**20  # bytes: a stage's writable space with less free is full
_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
J = TypeVar("J", bound=BaseModel)
Sent = dict[str, "Path | BaseModel"]  # what a stage sends: a file by name, or a message as result.json


def serve(kind: type[J], work: Callable[[J], Sent], context: str = "",
          explain: Callable[[str], str | None] | None = None) -> int:
    """Run one stage: the job of type `kind` in, `work(job)`'s files or message out; on an exception,
    a `Failure` (`context` before the name of an unexpected exception, `explain(message)` added
    after it when it has a hint). Returns the exit status."""
    line, channel = wire.start()  # waits for the job
    job = kind.model_validate_json(line)
    try:
        sent = work(job)
    except Exception as err:  # noqa: BLE001 - the submission's code, its refusal, or the graph failed on it
        out = getattr(job, "out", None)
        failed = failure(err, context, out)
        if explain is not None and (hint := explain(failed.message)):
            failed = failed.model_copy(update={"message": f"{failed.message}; {hint}"})
        wire.send(channel, RESULT, failed.model_dump_json().encode())
        return err.exit_code if isinstance(err, HarnessError) else EXIT_ERROR
    for name, what in sent.items():
        if isinstance(what, BaseModel):
            wire.send(channel, name, what.model_dump_json().encode())
        else:
            wire.send_file(channel, name, what)
    return 0


def failure(err: BaseException, context: str = "", out: str | Path | None = None) -> Failure:
    """The failure for an exception a stage caught: a `HarnessError` says its own kind (invalid for
    exit status 2); anything else is an error, its type named after `context`. `disk_full` when
    the exception, or one it came from, is "no space left", or the folder `out` is full."""
    tb = plain("".join(traceback.format_exception(type(err), err, err.__traceback__)))[-8000:]
    full = _no_space(err) or (out is not None and shutil.disk_usage(out).free < FULL_BELOW)
    if isinstance(err, HarnessError):
        return Failure(kind="invalid" if err.exit_code == EXIT_INVALID else "error", message=plain(str(err))[:8000],
                       traceback=tb, disk_full=full)
    return Failure(kind="error", message=f"{context}{type(err).__name__}: {plain(str(err))[:4000]}", traceback=tb,
                   disk_full=full)


def _no_space(err: BaseException | None) -> bool:
    seen = 0
    while err is not None and seen < 20:
        if isinstance(err, OSError) and err.errno in _SPACE:
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False
