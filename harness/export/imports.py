"""What a submission's code may import in stage 1: the packages the judge provides, and a guard.

A submission runs on the judge's environment (the evaluation image installs `requirements/lock.txt`),
not on the student's laptop: a package that happens to be installed here (timm, say) must not
import, or the same submission would pass here and fail there. While stage 1 runs the submission's
code, `guard(folder)` refuses every absolute import made BY A FILE OF THE SUBMISSION whose
top-level package is neither in the Python standard library, nor in `PROVIDED`, nor a module of the
submission's own folder. The imports made by torch and the other packages themselves are never
looked at. The refusal is a `ModuleNotFoundError` too, so code that falls back when a package is
absent (`try: import timm` / `except ImportError:`) runs as it would where the package is missing.

This is a helper for honest students, not a security boundary: the sandbox is that.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.machinery
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import SubmissionError

# The packages a submission's code may import, besides the standard library and its own files. The
# one list: submissions/README.md says it in words, and tests check that the lock holds each one.
PROVIDED = ("torch", "torchvision", "brevitas", "numpy")


class NotProvided(SubmissionError, ModuleNotFoundError):
    """The submission imports a package the judge does not provide."""


def provided_text() -> str:
    return ", ".join(PROVIDED) + " and the Python standard library"


@contextmanager
def guard(folder: str | Path) -> Iterator[None]:
    """While inside, imports made by the files under `folder` are checked (see the module's docstring)."""
    root = Path(folder).resolve()
    original_import, original_import_module = builtins.__import__, importlib.import_module
    inside: dict[str, str | None] = {}  # a module's __file__ -> its path relative to root, or None

    def relative(globals_: dict | None) -> str | None:
        origin = (globals_ or {}).get("__file__")
        if not isinstance(origin, str):
            return None
        if origin not in inside:
            path = Path(origin).resolve()
            inside[origin] = str(path.relative_to(root)) if path.is_relative_to(root) else None
        return inside[origin]

    def check(name: str, globals_: dict | None, line: int) -> None:
        rel = relative(globals_)
        top = name.partition(".")[0]
        if rel is None or not top or top in PROVIDED or top in sys.stdlib_module_names:
            return
        if importlib.machinery.PathFinder.find_spec(top, [str(root)]) is not None:  # a file of its own
            return
        raise NotProvided(f"{rel}:{line} imports {top}, which the judge does not provide; it provides "
                          f"{provided_text()}. Ship the code you need as .py files in your submission's folder, "
                          "or write it with torch (submissions/README.md, 'What the judge's environment provides')",
                          name=top)

    def checked_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002 - __import__'s names
        if level == 0:
            caller = sys._getframe(1)
            check(name, globals if globals is not None else caller.f_globals, caller.f_lineno)
        return original_import(name, globals, locals, fromlist, level)

    def checked_import_module(name, package=None):
        if not name.startswith("."):
            caller = sys._getframe(1)
            check(name, caller.f_globals, caller.f_lineno)
        return original_import_module(name, package)

    builtins.__import__, importlib.import_module = checked_import, checked_import_module
    try:
        yield
    finally:
        builtins.__import__, importlib.import_module = original_import, original_import_module
