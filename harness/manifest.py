"""The submission manifest (`submission.yaml`): a typed model and its loader.

A submission directory holds the model code, its weights and this manifest:

    team: alpha                 # required; letters, digits, '-' and '_'
    name: resnet18-fp16         # optional label; default: the directory's name
    model:
      code: model.py            # default model.py
      factory: build_model      # callable without arguments returning a torch.nn.Module
      weights: weights.pt       # default weights.pt
      normalize:                # optional; applied to images in [0, 1]
        mean: [0.4914, 0.4822, 0.4465]
        std: [0.2470, 0.2435, 0.2616]
    compression:
      structured_pruning: 0.0   # p_s, a fraction of all weights
      unstructured_pruning: 0.0 # p_u, a fraction of all weights; p_s + p_u < 1
      weight_bits: 32           # q_w, 1..32
      activation_bits: 32       # q_a, 1..32

Unknown keys, wrong types and out-of-range values raise `SubmissionError` naming the
file, the key and what is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from .errors import SubmissionError
from .record import Compression
from .schema import format_errors, read_yaml

MANIFEST = "submission.yaml"
Label = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)]
RelPath = Annotated[str, StringConstraints(pattern=r"^[^/\\][^\\]*$", min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Normalize(_Strict):
    """Per-channel mean and std applied to images scaled to [0, 1]."""

    mean: Annotated[list[float], Field(min_length=3, max_length=3)]
    std: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=3, max_length=3)]


class ModelSpec(_Strict):
    """Where the model's code and weights are, and how to build it."""

    code: RelPath = Field("model.py", description="Python file, relative to the submission directory")
    factory: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        "build_model", description="name of a callable in `code` taking no arguments"
    )
    weights: RelPath = Field("weights.pt", description="state_dict saved with torch.save")
    normalize: Normalize | None = None


class Declared(Compression):
    """Compression as a manifest declares it: each pruned fraction, and their sum, below 1."""

    structured_pruning: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    unstructured_pruning: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0

    @model_validator(mode="after")
    def _below_one(self):
        if self.structured_pruning + self.unstructured_pruning >= 1.0:
            raise ValueError("structured_pruning + unstructured_pruning must be below 1")
        return self


class Manifest(_Strict):
    """The whole `submission.yaml`."""

    team: Label
    name: Label | None = None
    model: ModelSpec = ModelSpec()
    compression: Declared = Declared()


def load_manifest(directory: str | Path) -> Manifest:
    """Read and validate `DIR/submission.yaml`; the name defaults to the directory's name."""
    folder = Path(directory)
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: not a directory")
    path = folder / MANIFEST
    raw = read_yaml(path, SubmissionError)
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as err:
        raise SubmissionError(format_errors(path, err, Manifest)) from None
    if manifest.name is None:
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", folder.resolve().name).strip("-")[:64] or "submission"
        manifest = manifest.model_copy(update={"name": name})
    for key, rel in (("model.code", manifest.model.code), ("model.weights", manifest.model.weights)):
        target = (folder / rel).resolve()
        if not target.is_relative_to(folder.resolve()):
            raise SubmissionError(f"{path}: {key}: {rel!r} points outside the submission directory")
        if not target.is_file():
            raise SubmissionError(f"{path}: {key}: file {rel!r} not found in {folder}")
    return manifest


def raw_team(directory: str | Path) -> str | None:
    """The team named in a manifest, even an invalid one, for labelling its record."""
    try:
        raw = read_yaml(Path(directory) / MANIFEST, SubmissionError)
    except SubmissionError:
        return None
    team = raw.get("team") if isinstance(raw, dict) else None
    return team if isinstance(team, str) and team else None
