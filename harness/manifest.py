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

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from .errors import SubmissionError
from .record import Compression, slug
from .yamlfile import format_errors, parse_yaml

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


def parse(folder: Path, data: bytes | None) -> Manifest:
    """Validate the manifest `data` of the submission directory `folder`; the name defaults to the
    directory's name. Raises `ManifestError` (with the team the file names, if any)."""
    path = folder / MANIFEST
    if data is None:
        raise ManifestError(f"{path}: file not found")
    raw = parse_yaml(data, path, ManifestError)
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as err:
        raise ManifestError(format_errors(path, err, Manifest), team=label(raw.get("team"))) from None
    if manifest.name is None:
        manifest = manifest.model_copy(update={"name": label(folder.resolve().name) or "submission"})
    for key, rel in (("model.code", manifest.model.code), ("model.weights", manifest.model.weights)):
        target = (folder / rel).resolve()
        if not target.is_relative_to(folder.resolve()):
            raise ManifestError(f"{path}: {key}: {rel!r} points outside the submission directory", manifest.team)
        if not target.is_file():
            raise ManifestError(f"{path}: {key}: file {rel!r} not found in {folder}", manifest.team)
    return manifest


def team_of(folder: Path, data: bytes | None) -> str | None:
    """The team a manifest names (as a label), even when the manifest or its submission is not valid."""
    try:
        return label(parse_yaml(data, folder / MANIFEST, ManifestError).get("team")) if data else None
    except ManifestError:
        return None


class ManifestError(SubmissionError):
    """A manifest that is not valid; `team` is what it names as its team (as a label), if anything."""

    def __init__(self, message: str, team: str | None = None):
        super().__init__(message)
        self.team = team


def label(value) -> str | None:
    """`value` as a label (letters, digits, '-' and '_', at most 64), or None: for naming the record of
    a manifest that is not valid."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return None
    return slug(str(value), "", 64) or None
