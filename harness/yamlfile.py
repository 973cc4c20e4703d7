"""Reading the typed YAML files (manifest, competition config) and explaining their errors.

It imports neither of them: the model a file was validated against is passed in."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


def read_yaml(path: Path, error: type[Exception]) -> dict:
    """Parse a YAML mapping file, raising `error` with the file's name on any problem."""
    if not path.is_file():
        raise error(f"{path}: file not found")
    return parse_yaml(path.read_bytes(), path, error)


def parse_yaml(data: bytes, path: Path, error: type[Exception]) -> dict:
    """Parse YAML bytes (from the file `path`) into a mapping: safe types only, no aliases (a
    manifest needs none, and they let a small file expand), nesting within Python's recursion
    limit; any problem raises `error` naming the file."""
    import yaml

    class _Loader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", mark)
            return super().compose_node(parent, index)

    try:
        data = yaml.load(data.decode("utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise error(f"{path}: not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise error(f"{path}: nested too deeply") from None
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
