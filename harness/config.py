"""The competition config: scoring constants, thresholds and limits, from a YAML file.

`load_rules()` reads the bundled `competition.yaml`; `load_rules(path)` reads the
instructor's file, where every key is optional and unknown keys are errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError
from .schema import format_errors, read_yaml

DEFAULT = Path(__file__).with_name("competition.yaml")
Positive = Annotated[float, Field(gt=0)]


class Rules(BaseModel):
    """Constants of the competition; every evaluation records the values it used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference_params: Positive = Field(5.6e6, description="w normaliser: ResNet18's parameters at 16 bits")
    reference_macs: Positive = Field(2.8e8, description="f normaliser: ResNet18's MACs at 16 bits")
    accuracy_threshold: Annotated[float, Field(ge=0, le=1)] = Field(0.90, description="eligibility threshold")
    flip_subset: Annotated[int, Field(ge=0)] = Field(1000, description="images in the flip check subset")
    flip_gap: Annotated[float, Field(ge=0, le=1)] = Field(0.05, description="flip accuracy gap that is flagged")
    probe_images: Annotated[int, Field(ge=1, le=1024)] = Field(16, description="images for activation bits")
    batch_size: Annotated[int, Field(ge=1)] | None = Field(
        None, description="images per forward pass; unset: chosen for the device (CPU 250, CUDA 1000)")
    timeout_s: Positive = Field(1800, description="worker wall-clock limit, seconds")
    isolation: Literal["auto", "none", "bwrap", "docker"] = Field(
        "auto", description="where the worker runs; auto: bwrap when it works here, else none (with a warning)")
    memory_mb: Annotated[int, Field(ge=64)] = Field(8192, description="worker memory limit (its processes' RSS), MiB")
    max_processes: Annotated[int, Field(ge=4)] = Field(256, description="worker processes + threads limit")
    scratch_mb: Annotated[int, Field(ge=16)] = Field(512, description="worker /tmp tmpfs size and largest file, MiB")
    docker_image: str = Field("cifar10-harness:latest", min_length=1, description="image of the docker isolation")
    docker_gpus: bool = Field(False, description="docker isolation: pass --gpus all")


def with_overrides(rules: Rules, **changes) -> Rules:
    """`rules` with the given keys replaced (command-line options), validated; None values are ignored."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return rules
    try:
        return Rules.model_validate({**rules.model_dump(), **changes})
    except ValidationError as err:
        raise ConfigError(format_errors(Path("command line"), err, Rules)) from None


def load_rules(path: str | Path | None = None) -> Rules:
    """The rules from `path`, or the bundled defaults."""
    file = Path(path) if path else DEFAULT
    try:
        return Rules.model_validate(read_yaml(file, ConfigError))
    except ValidationError as err:
        raise ConfigError(format_errors(file, err, Rules)) from None
