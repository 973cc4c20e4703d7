"""The competition config: scoring constants, thresholds and limits, from a YAML file.

`load_rules()` reads the bundled `competition.yaml`, the one place the values are written;
`load_rules(path)` lays the instructor's file over it: every key there is optional, unknown
keys are errors.
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

    reference_params: Positive = Field(description="w normaliser: ResNet18's parameters at 16 bits")
    reference_macs: Positive = Field(description="f normaliser: ResNet18's MACs at 16 bits")
    accuracy_threshold: Annotated[float, Field(ge=0, le=1)] = Field(description="eligibility threshold")
    flip_subset: Annotated[int, Field(ge=0)] = Field(description="images in the flip check subset")
    flip_gap: Annotated[float, Field(ge=0, le=1)] = Field(description="flip accuracy gap that is flagged")
    probe_images: Annotated[int, Field(ge=1, le=1024)] = Field(description="images for activation bits")
    batch_size: Annotated[int, Field(ge=1)] | None = Field(
        description="images per forward pass; null: chosen for the device (harness.measure.__main__.BATCH)")
    timeout_s: Positive = Field(description="wall-clock limit of each stage, seconds")
    isolation: Literal["auto", "none", "bwrap", "docker"] = Field(
        description="where the stages run; auto: bwrap when it works here, else none (with a warning)")
    memory_mb: Annotated[int, Field(ge=64)] = Field(description="memory limit of each stage (its processes' RSS), MiB")
    max_processes: Annotated[int, Field(ge=4)] = Field(description="processes + threads limit of each stage")
    scratch_mb: Annotated[int, Field(ge=16)] = Field(
        description="each stage's writable space (/tmp and /dev/shm tmpfs), largest file and log, MiB")
    submission_mb: Annotated[int, Field(ge=1)] = Field(description="most a submission directory's files hold, MiB")
    docker_image: str = Field(min_length=1, description="image of the docker isolation")
    docker_gpus: bool = Field(description="docker isolation: pass --gpus all")


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
    """The bundled rules (`competition.yaml`, the one place their values are written), with the
    keys of the instructor's file at `path`, if given, replacing them."""
    file = Path(path) if path else DEFAULT
    values = read_yaml(DEFAULT, ConfigError)
    if path:
        values.update(read_yaml(file, ConfigError))
    try:
        return Rules.model_validate(values)
    except ValidationError as err:
        raise ConfigError(format_errors(file, err, Rules)) from None
