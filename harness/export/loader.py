"""Build a submission's model in stage 1: import its code, call its factory, load its weights.

Runs only in stage 1's process (`harness.export`), the one process that executes the submission's code,
under `imports.guard` (it may import only what the judge provides). Weights are read with
`torch.load(..., weights_only=True)`: a pickle that needs anything beyond tensors and plain
containers is refused, never executed; a `.safetensors` file with `safetensors.torch.load_file`.
"""

from __future__ import annotations

import importlib.util
import linecache
import sys
import traceback
from pathlib import Path

import torch
from torch import nn

from ..errors import HarnessError, RunError, SubmissionError
from . import imports, mistakes

CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net")  # where training checkpoints keep the weights


def build(directory: str | Path, code: str, factory: str, weights: str) -> nn.Module:
    """The submission's model, with its weights loaded, in eval mode, on the CPU."""
    folder = Path(directory).resolve()
    with imports.guard(folder):
        module = _import(folder, folder / code, weights)
        fn = getattr(module, factory, None)
        if fn is None or not callable(fn):
            raise SubmissionError(f"{folder / code}: no callable named {factory!r} (model.factory in submission.yaml)")
        try:
            model = fn()
        except HarnessError:
            raise
        except Exception as err:  # noqa: BLE001 - the submission's own code failed
            where = student_line(err, folder) + mistakes.file_hint(err, weights)
            raise RunError(f"{folder / code}: {factory}() raised {type(err).__name__}: {err}{where}") from err
        if not isinstance(model, nn.Module):
            raise SubmissionError(f"{folder / code}: {factory}() returned {type(model).__name__}, "
                                  "not a torch.nn.Module")
        mistakes.refuse_compiled(model, f"{folder / code}: {factory}()")
        mistakes.refuse_torch_ao(model)
        _load_weights(model, folder / weights)
        return model.eval()


def _import(folder: Path, path: Path, weights: str):
    name = f"submission_{abs(hash(str(path))):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SubmissionError(f"{path}: cannot be imported as Python code")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))  # sibling .py files of the submission may be imported
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise SubmissionError(f"{path}: syntax error at line {err.lineno}: {err.msg}") from None
    except HarnessError:
        raise
    except Exception as err:  # noqa: BLE001 - the submission's own code failed
        where = student_line(err, folder) + mistakes.file_hint(err, weights)
        raise RunError(f"{path}: importing it raised {type(err).__name__}: {err}{where}") from err
    return module


def student_line(err: BaseException, submission: str | Path) -> str:
    """' at model.py:42 (forward): <code>' for the deepest frame in the submission's own files, or ''."""
    root = str(Path(submission).resolve()).rstrip("/") + "/"
    frames = [f for f in traceback.extract_tb(err.__traceback__) if str(Path(f.filename).resolve()).startswith(root)]
    if not frames:
        return ""
    f = frames[-1]
    line = (f.line or linecache.getline(f.filename, f.lineno or 0)).strip()
    rel = str(Path(f.filename).resolve())[len(root):]
    return f" at {rel}:{f.lineno} ({f.name})" + (f" `{line[:120]}`" if line else "")


def _read_weights(path: Path) -> object:
    """The weights file's contents: a `.safetensors` file with safetensors, any other with torch.load."""
    safetensors = path.suffix == ".safetensors"
    try:
        if safetensors:
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, SafetensorError and friends
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        how = "safetensors.torch.load_file" if safetensors else "torch.load(weights_only=True)"
        save = ("safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')" if safetensors
                else "torch.save(model.state_dict(), 'weights.pt')")
        raise SubmissionError(f"{path}: refused to load with {how}: {first}. Save a state_dict of tensors: {save}") \
            from None


def _load_weights(model: nn.Module, path: Path) -> None:
    state = _read_weights(path)
    if isinstance(state, nn.Module) or not isinstance(state, dict):
        raise SubmissionError(f"{path}: holds {type(state).__name__}, expected a state_dict (a dict of tensors)")
    if ao := mistakes.torch_ao_entries(state):
        raise mistakes.torch_ao_weights(path, ao)
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        inner = next((k for k in CHECKPOINT_KEYS if isinstance(state.get(k), dict)), None)
        hint = (f". It looks like a training checkpoint: save its state_dict alone, "
                f"torch.save(checkpoint[{inner!r}], 'weights.pt')") if inner else ""
        raise SubmissionError(f"{path}: entries that are not tensors: {', '.join(map(str, bad[:5]))}{hint}")
    try:
        result = model.load_state_dict(state, strict=False)  # modules (brevitas) judge their own keys
    except RuntimeError as err:
        lines = [ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()]
        raise SubmissionError(f"{path}: does not match the model built by the factory; {_few(lines)}") from None
    problems = []
    if result.missing_keys:
        problems.append(f"missing keys: {_few(result.missing_keys)}")
    if result.unexpected_keys:
        problems.append(f"unexpected keys: {_few(result.unexpected_keys)}")
    if problems:
        raise SubmissionError(f"{path}: does not match the model built by the factory; " + "; ".join(problems)
                              + mistakes.weights_hint(result.missing_keys, result.unexpected_keys))


def _few(items: list[str], n: int = 5) -> str:
    more = f" (and {len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more
