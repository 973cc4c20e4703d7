"""A record's texts as people see them (the board, a batch's verdict lines): paths relative to the
submission, informative first lines.

A record's errors name files with the judge's absolute paths (the instructor's folders, or
`/submission` inside the sandbox). `relative` shows a path inside the submission directory
relative to it (`model.py`), a path of an installed package from its `site-packages/`, a system
path (/usr, /dev, ...) as it is, and any other absolute path by its last part (`…/data.npy`).
`plain` removes terminal escapes and control characters from what a stage or a submission said.
`first_line` gives the first informative line of a multi-line message: a line that only
introduces the next ("RuntimeError:", "Error(s) in loading state_dict for Net:", "1 validation
error for Record", "submission.yaml: 2 problem(s)") is joined with the lines after it; a traceback gives its last line.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

SANDBOX = "/submission"  # where the sandbox mounts the submission (harness.judge.sandbox.SUBMISSION)
SYSTEM = ("/usr/", "/dev/", "/proc/", "/sys/", "/etc/", "/bin/", "/lib/", "/lib64/", "/sbin/")
PACKAGES = re.compile(r"/(site|dist)-packages/")
PATH = re.compile(r"(?<![\w.~…/-])/[^\s'\"`:,;()<>\[\]{}|]+")
BARE = re.compile(r"^[\w.]+(Error|Exception|Warning|Interrupt|Exit):?$")  # "RuntimeError:", "Traceback:"
MAX_JOINED = 3  # lines joined to the first at most


def relative(text: str, directory: str | None = None) -> str:
    """`text` with every absolute path shown as the module docstring says; `directory` is the
    submission's (the record's `directory`, absolute or relative to where the judge ran)."""
    roots = [SANDBOX]
    tails: list[str] = []
    if directory:
        d = directory.rstrip("/")
        if d.startswith("/"):
            roots.insert(0, d)
        parts = [p for p in PurePosixPath(d).parts if p not in ("/", ".", "..")]
        tails = ["/".join(parts[-n:]) for n in (2, 1) if len(parts) >= n]

    def show(match: re.Match) -> str:
        path = match.group(0)
        end = len(path.rstrip(".,"))
        path, rest = path[:end], path[end:]
        return _show(path, roots, tails) + rest

    return PATH.sub(show, text)


def first_line(text: str, limit: int = 200) -> str:
    """The first informative line of `text` (see the module docstring), at most `limit` characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].startswith("Traceback (most recent call last)"):
        lines = lines[-1:]
    line, i = lines[0], 0
    while i + 1 < len(lines) and i < MAX_JOINED and _introduces(line):
        i += 1
        sep = " " if line.endswith(":") else ": "
        line = f"{line}{sep}{lines[i]}"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _introduces(line: str) -> bool:
    """A line that says nothing without the next: it ends with ':', is a bare exception name, or is
    pydantic's "N validation error(s) for X" or a YAML file's "PATH: N problem(s)"."""
    return (line.endswith(":") or bool(BARE.match(line)) or bool(re.match(r"^\d+ validation errors? for ", line))
            or bool(re.search(r": \d+ problem\(s\)$", line)))


def _show(path: str, roots: list[str], tails: list[str]) -> str:
    for root in roots:
        if path == root:
            return "."
        if path.startswith(root + "/"):
            return path[len(root) + 1:]
    for tail in tails:  # the directory recorded relative, or resolved through a link: its last parts
        mark = f"/{tail}/"
        if mark in path:
            return path[path.rindex(mark) + len(mark):]
        if path.endswith(f"/{tail}"):
            return "."
    if found := PACKAGES.search(path):
        return path[found.start() + 1:]
    if path.startswith(SYSTEM):
        return path
    name = PurePosixPath(path).name
    return f"…/{name}" if name else "…"


def plain(text: str) -> str:
    """`text` as plain text: without terminal escape sequences (colours, bold: torch's messages carry
    some), removed until none is left (a sequence nested in another reappears when the outer one
    goes), and without any other control character but newline and tab (a carriage return would
    let a message write over the lines before it)."""
    for _ in range(len(text) + 1):
        shorter = _ANSI.sub("", text)
        if shorter == text:
            break
        text = shorter
    return _CONTROL.sub("", text)


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
