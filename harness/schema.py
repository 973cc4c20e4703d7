"""Shared helpers for the typed files (manifest, competition config): read YAML, explain errors.

It imports neither of them: the model a file was validated against is passed in."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


def read_yaml(path: Path, error: type[Exception]) -> dict:
    """Parse a YAML mapping, raising `error` with the file's name on any problem."""
    import yaml

    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise error(f"{path}: not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of keys to values, found {type(data).__name__}")
    return data


def format_errors(path: Path, err: ValidationError, root) -> str:
    """One line per problem: the file, the dotted key, what is wrong and what is allowed (the keys
    of the model at that place, found from `root`, the model the file was validated against)."""
    lines = [f"{path}: {err.error_count()} problem(s)"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            parent = e["loc"][:-1]
            lines.append(f"  {key}: unknown key; allowed here: {_allowed(root, parent)}")
            continue
        got = e.get("input")
        shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
        lines.append(f"  {key}: {e['msg']}{shown}")
    return "\n".join(lines)


def _allowed(root, parent: tuple) -> str:
    model = _model_at(root, parent)
    return ", ".join(model.model_fields) if model is not None else "see the documentation"


def _model_at(model, parent: tuple):
    from pydantic import BaseModel

    for part in parent:
        if model is None:
            return None
        field = model.model_fields.get(str(part))
        ann = field.annotation if field else None
        candidates = [ann, *getattr(ann, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return model
