"""The typed messages between the judge (parent) and its two sandboxed stages.

    parent --BuildJob-->   stage 1 (harness.export, beside the submission's code) --> graph.pt2 (+ Failure)
    parent --MeasureJob--> stage 2 (harness.measure, harness code only)          --> MeasureResult

Messages only: they travel as `harness.wire` says (the job on the stage's stdin, its files on its
stdout), and `harness.stage` is the stages' one runtime around them. Each is built by its producer
and validated by its consumer: the stages validate their job, stage 2 builds its `MeasureResult`,
and the parent validates what comes back, strictly, with ranges (integer counts from 0 to
`record.MAX_COUNT`, fractions in [0, 1], per-layer sums equal to the totals, the right number of
predictions). Nothing stage 1 says is a number of the
record: the parent takes from it the exported program file and, when it failed, its message.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .manifest import Normalize
from .record import OPS, Compression, Count, Layer

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Text = Annotated[str, Field(max_length=8000)]
GRAPH = "graph.pt2"  # the exported program: stage 1 sends it, stage 2 reads it from its inbox
RESULT = "result.json"  # a stage's result (stage 2's MeasureResult) or its Failure
MAX_CLASSES = 10


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


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



class MeasureResult(_Strict):
    """Stage 2's result, built there and validated again by the parent (strictly: `read`); `check(n)`
    adds what the types cannot say."""

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

    @classmethod
    def read(cls, data: dict) -> MeasureResult:
        """What the parent received, validated strictly, its rows too (no coercion of a type)."""
        return cls.model_validate(data, strict=True)

    @model_validator(mode="after")
    def _sums(self):
        if unknown := sorted({r.op for r in self.layers} - set(OPS)):
            raise ValueError(f"unknown operation kinds {unknown}")
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
