"""The typed messages between the judge (parent) and its two sandboxed stages.

    parent --BuildJob-->   stage 1 (harness.build, beside the submission's code) --> graph.pt2 (+ Failure)
    parent --MeasureJob--> stage 2 (harness.measure, harness code only)          --> MeasureResult

Each is validated where it is read: the stages validate their job, and the parent validates what
comes back with ranges (non-negative integer counts, fractions in [0, 1], per-layer sums equal to
the totals, the right number of predictions). Nothing stage 1 says is a number of the record: the
parent takes from it the exported program file and, when it failed, its message.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, model_validator

from .record import Compression

Bits = Annotated[int, Field(ge=1, le=32)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Text = Annotated[str, Field(max_length=8000)]
GRAPH = "graph.pt2"  # the exported program, in stage 1's scratch folder and then in stage 2's
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
    out: str  # where graph.pt2 and result.json go


class MeasureJob(_Strict):
    """Stage 2: count, measure and predict from the exported program."""

    graph: str
    out: str
    images: str | None = None  # uint8 [N, 32, 32, 3], in a fresh random order; None: profile only
    flip_positions: list[NonNegativeInt] = []  # images (positions in `images`) of the flip check
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

    @classmethod
    def of(cls, err: BaseException, context: str = "") -> Failure:
        """The failure for an exception a stage caught: a `HarnessError` says its own kind (invalid for
        exit status 2); anything else is an error, its type named after `context`."""
        from .errors import EXIT_INVALID, HarnessError

        tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))[-8000:]
        if isinstance(err, HarnessError):
            kind = "invalid" if err.exit_code == EXIT_INVALID else "error"
            return cls(kind=kind, message=str(err)[:8000], traceback=tb)
        return cls(kind="error", message=f"{context}{type(err).__name__}: {str(err)[:4000]}", traceback=tb)


def write_result(out: Path, result: dict) -> None:
    """A stage's `result.json` in its `out` folder, replaced atomically (the parent never reads half)."""
    tmp = out / "result.json.tmp"
    tmp.write_text(json.dumps(result))
    tmp.replace(out / "result.json")


class Layer(_Strict):
    layer: Annotated[str, Field(max_length=200)]
    op: Literal["conv", "matmul", "attention", "product", "accumulate", "reduction", "params"]
    params: NonNegativeInt
    macs: NonNegativeInt
    zeros: NonNegativeInt = 0
    structured_zeros: NonNegativeInt = 0
    weight_bits: Bits | None = None
    activation_bits: Bits | None = None


class MeasureResult(_Strict):
    """Stage 2's result; `check(job, n)` adds what the types cannot say."""

    ok: Literal[True] = True
    params: NonNegativeInt
    macs: NonNegativeInt
    layers: Annotated[list[Layer], Field(max_length=50_000)]
    measured: Compression
    structured_mac_share: Fraction
    predictions: list[Annotated[int, Field(ge=0, lt=MAX_CLASSES)]] | None = None
    flip_predictions: list[Annotated[int, Field(ge=0, lt=MAX_CLASSES)]] | None = None
    device: Annotated[str, Field(max_length=200)]
    torch_version: Annotated[str, Field(max_length=100)]
    timings: dict[Annotated[str, Field(max_length=40)], Annotated[float, Field(ge=0)]] = {}
    warnings: list[Annotated[str, Field(max_length=1000)]] = []

    @model_validator(mode="after")
    def _sums(self):
        if sum(r.params for r in self.layers) != self.params:
            raise ValueError("the layers' weights do not add up to params")
        if sum(r.macs for r in self.layers) != self.macs:
            raise ValueError("the layers' MACs do not add up to macs")
        return self

    def check(self, images: int | None, flips: int) -> None:
        """The right number of predictions for `images` test images and `flips` flipped ones."""
        if images is None:
            return
        if self.predictions is None or len(self.predictions) != images:
            got = None if self.predictions is None else len(self.predictions)
            raise ValueError(f"{got} predictions for {images} images")
        if self.flip_predictions is None or len(self.flip_predictions) != flips:
            raise ValueError(f"flip predictions for {flips} images expected")
