"""The typed messages between the judge (parent) and its two sandboxed stages.

    parent --BuildJob-->   stage 1 (harness.build, beside the submission's code) --> graph.pt2 (+ Failure)
    parent --MeasureJob--> stage 2 (harness.measure, harness code only)          --> MeasureResult

They travel as `harness.wire` says (the job on the stage's stdin, its files on its stdout).
Each is validated where it is read: the stages validate their job, and the parent validates what
comes back with ranges (integer counts from 0 to `MAX_COUNT`, fractions in [0, 1], per-layer sums
equal to the totals, the right number of predictions). Nothing stage 1 says is a number of the
record: the parent takes from it the exported program file and, when it failed, its message.
"""

from __future__ import annotations

import errno
import re
import shutil
import traceback
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .record import Compression

MAX_COUNT = 10**15  # weights or MACs: ResNet18 has 1.1e7 and 5.6e8; more is not a CIFAR-10 model
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Bits = Annotated[int, Field(ge=1, le=32)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Text = Annotated[str, Field(max_length=8000)]
GRAPH = "graph.pt2"  # the exported program: stage 1 sends it, stage 2 reads it from its inbox
RESULT = "result.json"  # a stage's result (stage 2's MeasureResult) or its Failure
MAX_CLASSES = 10


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Normalize(_Strict):
    mean: list[float]
    std: list[float]


class BuildJob(_Strict):
    """Stage 1: build the submission's model and export it."""

    submission: str  # the submission directory (inside the sandbox: /submission)
    code: str
    factory: str
    weights: str
    out: str  # its writable folder (inside a sandbox, the tmpfs at /tmp), where graph.pt2 is written


class MeasureJob(_Strict):
    """Stage 2: count, measure and predict from the exported program."""

    graph: str
    out: str
    images: str | None = None  # uint8 [N, 32, 32, 3], in a fresh random order; None: random probe images
    predict: bool = True  # predict `images` (evaluate); False: they are only probe images (profile --data)
    normalize: Normalize | None = None
    half_weights: bool = False  # weight_bits: 16 declared: stored tensors rounded to float16
    half_inputs: bool = False  # activation_bits: 16 declared: counted operands rounded to float16
    probe_images: Annotated[int, Field(ge=1, le=1024)] = 16
    batch_size: Annotated[int, Field(ge=1)] | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"


class Failure(_Strict):
    """What a stage that failed says: an error message for the record."""

    ok: Literal[False] = False
    kind: Literal["invalid", "error"]
    message: Text
    traceback: Text | None = None
    disk_full: bool = False  # its writable space was full (the parent names the disk limit)

    @classmethod
    def of(cls, err: BaseException, context: str = "", out: str | Path | None = None) -> Failure:
        """The failure for an exception a stage caught: a `HarnessError` says its own kind (invalid for
        exit status 2); anything else is an error, its type named after `context`. `disk_full` when
        the exception, or one it came from, is "no space left", or the folder `out` is full."""
        from .errors import EXIT_INVALID, HarnessError

        tb = plain("".join(traceback.format_exception(type(err), err, err.__traceback__)))[-8000:]
        full = _no_space(err) or (out is not None and shutil.disk_usage(out).free < FULL_BELOW)
        if isinstance(err, HarnessError):
            kind = "invalid" if err.exit_code == EXIT_INVALID else "error"
            return cls(kind=kind, message=plain(str(err))[:8000], traceback=tb, disk_full=full)
        return cls(kind="error", message=f"{context}{type(err).__name__}: {plain(str(err))[:4000]}", traceback=tb,
                   disk_full=full)


def plain(text: str) -> str:
    """`text` as plain text: without terminal escape sequences (colours, bold: torch's messages carry
    some), removed until none is left (a sequence nested in another reappears when the outer one
    goes), and without any other control character but newline and tab (a carriage return would
    let a message write over the lines before it)."""
    for _ in range(len(text) + 1):
        shorter = _ANSI.sub("", text)
        if shorter == text:
            break
        text = shorter
    return _CONTROL.sub("", text)


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
FULL_BELOW = 2**20  # bytes: a stage's writable space with less free is full
_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _no_space(err: BaseException | None) -> bool:
    seen = 0
    while err is not None and seen < 20:
        if isinstance(err, OSError) and err.errno in _SPACE:
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


class Layer(_Strict):
    layer: Annotated[str, Field(max_length=200)]
    op: Literal["conv", "matmul", "attention", "product", "accumulate", "reduction", "params"]
    params: Count
    macs: Count
    zeros: Count = 0
    structured_zeros: Count = 0
    weight_bits: Bits | None = None
    activation_bits: Bits | None = None


class MeasureResult(_Strict):
    """Stage 2's result; `check(job, n)` adds what the types cannot say."""

    ok: Literal[True] = True
    params: Count
    macs: Count
    layers: Annotated[list[Layer], Field(max_length=50_000)]
    measured: Compression
    structured_mac_share: Fraction
    predictions: list[Annotated[int, Field(ge=0, lt=MAX_CLASSES)]] | None = None
    device: Annotated[str, Field(max_length=200)]
    torch_version: Annotated[str, Field(max_length=100)]
    packages: Annotated[dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=100)]],
                        Field(max_length=32)] = {}
    timings: dict[Annotated[str, Field(max_length=40)], Annotated[float, Field(ge=0, le=1e7)]] = {}
    warnings: list[Annotated[str, Field(max_length=1000)]] = []

    @model_validator(mode="after")
    def _sums(self):
        if sum(r.params for r in self.layers) != self.params:
            raise ValueError("the layers' weights do not add up to params")
        if sum(r.macs for r in self.layers) != self.macs:
            raise ValueError("the layers' MACs do not add up to macs")
        return self

    def check(self, images: int | None) -> None:
        """The right number of predictions for `images` images (the test images and the checks')."""
        if images is None:
            return
        if self.predictions is None or len(self.predictions) != images:
            got = None if self.predictions is None else len(self.predictions)
            raise ValueError(f"{got} predictions for {images} images")
