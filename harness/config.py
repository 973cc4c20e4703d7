"""The competition config: scoring constants, thresholds and limits, from a YAML file.

`load_rules()` reads the bundled `competition.yaml`, the one place the values are written;
`load_rules(path)` lays the instructor's file over it: every key there is optional, unknown
keys are errors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError
from .yamlfile import format_errors, read_yaml

DEFAULT = Path(__file__).with_name("competition.yaml")
Positive = Annotated[float, Field(gt=0)]
Gap = Annotated[float, Field(ge=0, le=1)]  # a share of images (0.05: five points of accuracy)


class Rules(BaseModel):
    """Constants of the competition; every evaluation records the values it used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference_params: Positive = Field(description="w normaliser: ResNet18's parameters at 16 bits")
    reference_macs: Positive = Field(description="f normaliser: ResNet18's MACs at 16 bits")
    accuracy_threshold: Annotated[float, Field(ge=0, le=1)] = Field(description="eligibility threshold")
    unseen_images: Annotated[int, Field(ge=0, le=50_000)] = Field(
        description="training images predicted among the test images (the unseen check); 0: none")
    unseen_margin: Gap = Field(description="unseen check: accuracy gap allowed below the test accuracy")
    require_unseen: bool = Field(description="refuse to evaluate when the data root holds no training images")
    private_data: str | None = Field(description="folder of the instructor's labelled private images (ImageFolder); "
                                     "relative to the config file")
    private_images: Annotated[int, Field(ge=1)] | None = Field(
        description="private images predicted per evaluation, drawn afresh from the folder; null: all of them")
    private_gap: Gap = Field(description="private check: accuracy gap allowed below the test accuracy")
    flip_images: Annotated[int, Field(ge=0, le=10_000)] = Field(
        description="random test images also predicted mirrored")
    flip_gap: Gap = Field(description="flip check: accuracy gap allowed below the same images unchanged")
    shift_images: Annotated[int, Field(ge=0, le=10_000)] = Field(
        description="random test images also predicted shifted by one pixel")
    shift_gap: Gap = Field(description="shift check: accuracy gap allowed below the same images unchanged")
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
    reuse_programs: bool = Field(
        description="judging the same files again with the same harness and environment, reuse the program stage 1 "
                    "exported then instead of running it (harness/judge/programs.py); false: always export afresh")
    docker_image: str = Field(min_length=1, description="image of the docker isolation")
    docker_gpus: bool = Field(description="docker isolation: pass --gpus all")
    roster: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")], list[str]] | None = Field(
        description="team -> the folders its submissions come from (relative to the config file); a submission's "
                    "team is then the one whose folder holds it, whatever its manifest says; null: the manifest's")


def team_by_folder(rules: Rules, folder: str | Path) -> str | None:
    """The roster's team whose folder holds `folder` (None when none does); with no roster, None."""
    where = Path(folder).resolve()
    found = [team for team, roots in (rules.roster or {}).items()
             for root in roots if where == Path(root) or Path(root) in where.parents]
    return found[0] if found else None


def with_overrides(rules: Rules, **changes) -> Rules:
    """`rules` with the given keys replaced (command-line options), validated; None values are ignored."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return rules
    try:
        return Rules.model_validate({**rules.model_dump(), **changes})
    except ValidationError as err:
        raise ConfigError(format_errors(Path("command line"), err, Rules)) from None


def parse_size(text: str | int) -> int:
    """A memory size in MiB from `4096`, `512M`, `8G` or `1T` (a bare number is MiB): the command
    line's `--memory`, for `memory_mb`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ConfigError(f"{text!r}: not a size; write e.g. 4096 (MiB), 512M or 8G")
    scale = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024**2}[match.group(2).lower()]
    mib = int(float(match.group(1)) * scale)
    if mib < 1:
        raise ConfigError(f"{text!r}: a size of at least 1 MiB is needed")
    return mib


def load_rules(path: str | Path | None = None) -> Rules:
    """The bundled rules (`competition.yaml`, the one place their values are written), with the
    keys of the instructor's file at `path`, if given, replacing them."""
    file = Path(path) if path else DEFAULT
    values = read_yaml(DEFAULT, ConfigError)
    if path:
        mine = read_yaml(file, ConfigError)
        if isinstance(mine.get("private_data"), str):  # relative to the file that names it
            mine["private_data"] = str((file.parent / Path(mine["private_data"]).expanduser()).resolve())
        if isinstance(mine.get("roster"), dict):  # a folder or a list of folders per team, relative to the file
            mine["roster"] = {team: [str((file.parent / Path(str(f)).expanduser()).resolve())
                                     for f in (roots if isinstance(roots, list) else [roots])]
                              for team, roots in mine["roster"].items()}
        values.update(mine)
    try:
        return Rules.model_validate(values)
    except ValidationError as err:
        raise ConfigError(format_errors(file, err, Rules)) from None
