"""The result record: one typed JSON file per evaluation, written atomically, never overwritten.

Fields (all in `Record`): who (`team`, `name`), what happened (`status`: ok | invalid |
error, `errors`), accuracy (`accuracy`, `correct`, `total`) and the `checks` against memorising
the test images (unseen, private, flip, shift), counts (`params`,
`macs`, `structured_mac_share`, `layers`), compression (`declared`, `measured`, `effective`,
`claims_verified`, `claim_failures`), `score`, `eligible` with its `reasons`, and
`provenance` (harness and scoring versions, hashes of the submission and of the test
set, device, time, rules used, whether stage 1's exported program was reused). `profile` fills
the same record without accuracy fields.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RECORD_VERSION = 3


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Compression(BaseModel):
    """Compression, the one description of it: as a manifest declares it, as stage 2 measures it and
    as the score credits it. Pruned fractions of all weights, in [0, 1] together; bit widths."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    structured_pruning: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    unstructured_pruning: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    weight_bits: Annotated[int, Field(ge=1, le=32)] = 32
    activation_bits: Annotated[int, Field(ge=1, le=32)] = 32

    @model_validator(mode="after")
    def _fractions(self):
        if self.structured_pruning + self.unstructured_pruning > 1.0 + 1e-9:
            raise ValueError("structured_pruning + unstructured_pruning must be at most 1")
        return self


MAX_COUNT = 10**15  # weights or MACs: ResNet18 has 1.1e7 and 5.6e8; more is not a CIFAR-10 model
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Bits = Annotated[int, Field(ge=1, le=32)]
OPS = ("conv", "matmul", "attention", "product", "accumulate", "reduction", "params")  # what stage 2 writes


class Layer(_Model):
    """One row of the receipt: a counted operation of a layer, or a module's other parameters. The one
    definition: stage 2 builds it, the parent validates it (`harness.jobs.MeasureResult`, which also
    holds `op` to `OPS`), the record keeps it (records of version 1 have other ops, e.g. linear)."""

    layer: Annotated[str, Field(max_length=200)] = Field(description="module name; '(model)' for the model itself")
    op: str = Field(description="conv, matmul, attention, product, accumulate, reduction; params for weights only")
    params: Count = Field(description="parameters owned by this layer")
    macs: Count = Field(description="multiply-accumulates per image")
    zeros: Count = Field(0, description="zero elements of the weight as used")
    structured_zeros: Count = Field(0, description="elements of entirely zero output channels")
    weight_bits: Bits | None = None
    activation_bits: Bits | None = Field(None, description="bits of the layer's input; None for the first layer")


class Score(_Model):
    params_term: float
    ops_term: float
    total: float
    ops_pruning: float = Field(0.0, description="structured pruning credited on the MAC term (scoring version 2)")


class Flip(_Model):
    """Accuracy on the horizontally flipped images of a fixed subset, against the originals."""

    subset: int
    accuracy: float = Field(description="on the original images of the subset")
    flipped_accuracy: float
    gap: float = Field(description="accuracy - flipped_accuracy")
    flagged: bool


class Check(_Model):
    """One check that the model generalises beyond the public test images (harness/judge/checks.py):
    its accuracy on the check's images against a reference (the test accuracy for `unseen` and
    `private`, the same test images unchanged for `flip` and `shift`)."""

    name: Literal["unseen", "private", "flip", "shift"]
    ran: bool = Field(description="False: the data it needs was not there (`note` says why)")
    images: int = 0
    accuracy: float | None = None
    reference: float | None = None
    gap: float | None = Field(None, description="reference - accuracy")
    margin: float | None = Field(None, description="the rules' allowed gap")
    tolerance: float | None = Field(None, description="margin + 3 standard errors of the gap")
    passed: bool = True
    seed: int | None = Field(None, description="seed of the random draw of its images")
    note: str | None = None


class Provenance(_Model):
    harness_version: str
    scoring_version: str
    record_version: int = RECORD_VERSION
    submission_sha256: str | None = None
    files: dict[str, str] = Field(default_factory=dict, description="sha256 of each submission file")
    dataset_sha256: str | None = None
    dataset: str | None = None
    unseen_sha256: str | None = Field(None, description="checksum of the training images sampled by the unseen check")
    private_sha256: str | None = Field(None, description="checksum of the instructor's private images")
    device: str | None = None
    isolation: str | None = Field(None, description="where the worker ran: none, bwrap or docker")
    torch_version: str | None = None
    packages: dict[str, str] = Field(default_factory=dict, description="versions of Python and of the packages "
                                     "that can change a count or a prediction, as the measuring stage ran them")
    created_at: str
    rules: dict[str, float | None] = Field(default_factory=dict, description="the rules it was judged by; "
                                           "null: a rule without a value (all private images)")
    team_from: Literal["manifest", "roster"] = Field(
        "manifest", description="who named the team: the submission's manifest, or the config's roster by folder")
    program: Literal["exported", "reused"] | None = Field(
        None, description="where stage 2's program came from: exported by stage 1 in this evaluation, or reused, "
                          "kept from an earlier one of the same files, harness and environment (stage 1 did not run; "
                          "harness/judge/programs.py); null: no program (stage 1 failed or never ran), or a record "
                          "of an older harness")
    job: str | None = Field(None, description="the cluster job that judged it: 'slurm ARRAY_TASK' (slurm 4211_7)")


class Record(_Model):
    kind: Literal["evaluate", "profile"] = "evaluate"
    team: str
    name: str
    directory: str
    status: Literal["ok", "invalid", "error"]
    errors: list[str] = Field(default_factory=list)
    traceback: str | None = None
    stopped: str | None = Field(None, description="why the evaluation was stopped from outside before it finished "
                                                  "(a Slurm time limit, preemption or scancel; SIGTERM): an error "
                                                  "record that --skip-evaluated evaluates again")
    accuracy: float | None = None
    correct: int | None = None
    total: int | None = None
    flip: Flip | None = Field(None, description="records of versions 1 and 2 only (read, not written)")
    checks: list[Check] = Field(default_factory=list, description="unseen, private, flip and shift checks")
    params: int | None = Field(None, ge=0)
    macs: int | None = Field(None, ge=0)
    structured_mac_share: float | None = Field(None, ge=0, le=1, description="share of f in zero output channels")
    uncounted_ops: list[str] = Field(default_factory=list, description="records of version 1 only (read, not written)")
    layers: list[Layer] = Field(default_factory=list)
    declared: Compression | None = None
    measured: Compression | None = None
    effective: Compression | None = None
    claims_verified: bool = False
    claim_failures: list[str] = Field(default_factory=list)
    score: Score | None = None
    eligible: bool = False
    reasons: list[str] = Field(default_factory=list, description="why not eligible")
    warnings: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    provenance: Provenance


def flagged(record: Record) -> list[str]:
    """The checks against memorised test images that `record` failed (a version-2 record: its flag)."""
    names: list[str] = [c.name for c in record.checks if c.ran and not c.passed]
    return names + (["flip"] if record.flip is not None and record.flip.flagged and "flip" not in names else [])


def describe(c: Check) -> str:
    """One check's figures and verdict in words (its name aside), for the terminal and the run page."""
    if not c.ran:
        return f"did not run ({c.note})"
    verdict = "passed" if c.passed else "FAILED"
    against = "test accuracy" if c.name in ("unseen", "private") else "unchanged"
    return (f"{c.accuracy or 0:.2%} on {c.images:,} images against {c.reference or 0:.2%} {against}, gap "
            f"{(c.gap or 0) * 100:+.1f} points, at most {(c.tolerance or 0) * 100:.1f} allowed: {verdict}")


def percent(share: float, least: int = 0) -> str:
    """A share as a percentage with the digits that matter: 0.9 -> '90%', 0.9025 -> '90.25%', with at
    least `least` decimals (accuracies: 2, so 0.9002 -> '90.02%'), at most 4."""
    for digits in range(least, 5):
        if abs(round(share * 100, digits) - share * 100) < 1e-9:
            break
    return f"{share * 100:.{digits}f}%"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def write(record: Record, folder: str | Path) -> Path:
    """Write `record` as a new JSON file in `folder`, atomically; never replaces a file."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    stem = file_stem(record)
    text = record.model_dump_json(indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=out)  # never read as a record
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        while True:
            final = out / f"{stem}-{secrets.token_hex(3)}.json"
            try:
                os.link(tmp, final)  # fails instead of overwriting
                return final
            except FileExistsError:
                continue
    finally:
        os.unlink(tmp)


def file_stem(record: Record) -> str:
    """A record's file name without its random suffix: time, team and name as slugs (letters, digits,
    '-' and '_', 40 characters at most each) and a short hash of the exact team and name, so that
    any team and name, even of an invalid manifest, give a safe, bounded and distinct name."""
    stamp = re.sub(r"[^0-9T]", "", record.provenance.created_at)[:15]
    who = hashlib.sha256(f"{record.team}\0{record.name}".encode()).hexdigest()[:8]
    return f"{stamp}-{slug(record.team)}-{slug(record.name)}-{who}"


def slug(text: str, default: str = "x", limit: int = 40) -> str:
    """`text` as a name for a file or a URL, the one rule for them all (record files, team pages and
    slides, `plot`'s default file): every run of characters other than letters, digits, '-' and '_'
    becomes '-', no '-' at either end, at most `limit` characters; `default` when nothing is left."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:limit].strip("-") or default


def read(path: str | Path) -> Record:
    """Load one record; raises ValueError (pydantic's ValidationError) or OSError if unreadable."""
    return Record.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
