"""What a batch of evaluations says on the terminal while it runs: a progress bar of the images
predicted, a verdict line as soon as each submission is judged ("[7/18] ... about 6 min left"),
and a one-line-per-submission summary at the end, skipped submissions included.

Only text: the command line (`harness.cli`) decides where it goes (verdicts and bars on stderr,
the summary on stdout) and when to stay silent (--json, --quiet).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from ..record import Record
from ..text import first_line, relative

ERROR_CHARS = 160  # the first line of an error, cut to this many characters in a verdict


@dataclass
class Line:
    """One submission of the batch: its directory, its record, and whether it was skipped (judged before)."""

    directory: str
    record: Record
    skipped: bool = False


class Batch:
    """The batch's count and clock: `verdict()` after each judged submission, `summary()` at the end.
    `order` is the batch's directories as given, `todo` how many will really be judged (the skipped
    ones aside), `jobs` how many at once, for the time left."""

    def __init__(self, order: list[str], todo: int, jobs: int = 1):
        self.order, self.total, self.todo, self.jobs = list(order), len(order), todo, jobs
        self.lines: list[Line] = []
        self.judged, self.spent, self.started = 0, 0.0, 0

    def start(self, directory: str) -> str:
        self.started += 1
        return f"[{self.started}/{self.total}] evaluating {directory} ..."

    def skip(self, directory: str, earlier: Record, path) -> str:
        self.started += 1
        self.lines.append(Line(directory, earlier, skipped=True))
        return (f"[{len(self.lines)}/{self.total}] skipped {directory}: evaluated already ({path.name}): "
                f"{verdict(earlier)}")

    def verdict(self, directory: str, rec: Record, seconds: float) -> str:
        self.lines.append(Line(directory, rec))
        self.judged, self.spent = self.judged + 1, self.spent + seconds
        left = self.todo - self.judged
        clock = f"{seconds:.0f} s"
        if left > 0:
            clock += f"; {left} to go, about {_duration(self.spent / self.judged * left / self.jobs)} left"
        return f"[{len(self.lines)}/{self.total}] {rec.team}/{rec.name}: {verdict(rec)}  ({clock})"

    def summary(self, interrupted: bool = False) -> str:
        judged = sum(not ln.skipped for ln in self.lines)
        head = (f"{len(self.lines)} of {self.total} submissions: {judged} evaluated, "
                f"{len(self.lines) - judged} skipped (evaluated already with these files and rules)")
        if interrupted:
            head = "interrupted: " + head + f", {self.total - len(self.lines)} not evaluated"
        width = max((len(f"{ln.record.team}/{ln.record.name}") for ln in self.lines), default=0)
        rows = [f"  {f'{ln.record.team}/{ln.record.name}':{width}}  {_short(ln.record):34}  {ln.directory}"
                + ("  (skipped)" if ln.skipped else "") for ln in sorted(self.lines, key=self._position)]
        return "\n".join([head, *rows])

    def _position(self, line: Line) -> int:
        """Where the submission stands in the batch as given (`order`), so the summary reads in that order."""
        return self.order.index(line.directory) if line.directory in self.order else len(self.order)


def verdict(rec: Record) -> str:
    """A record in a few words: eligible or why not, with its score and accuracy."""
    if rec.stopped is not None:
        return f"STOPPED: {rec.stopped}"
    if rec.status != "ok":
        first = first_line(relative(rec.errors[0], rec.directory), ERROR_CHARS) if rec.errors else ""
        return f"{rec.status.upper()}: {first}" if first else rec.status.upper()
    figures = (f"score {rec.score.total:.4f}" if rec.score is not None else "no score") + \
        (f", accuracy {rec.accuracy:.2%}" if rec.accuracy is not None else "")
    if rec.kind == "profile":
        return figures
    return f"ELIGIBLE, {figures}" if rec.eligible else f"not eligible ({'; '.join(rec.reasons)}), {figures}"


def _short(rec: Record) -> str:
    if rec.stopped is not None:
        return "STOPPED"
    if rec.status != "ok":
        return rec.status.upper()
    figures = (f"{rec.score.total:.4f}" if rec.score is not None else "") + \
        (f"  {rec.accuracy:6.2%}" if rec.accuracy is not None else "")
    return f"{'ELIGIBLE' if rec.eligible else 'not eligible':12}  {figures}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Bar:
    """A progress bar of the images predicted (tqdm), on a terminal only (`on`); called as
    `bar(done, total)`."""

    def __init__(self, on: bool):
        self.on = on and sys.stderr.isatty()
        self.tqdm: Any = None

    def __enter__(self):
        return self if self.on else None

    def __call__(self, done: int, total: int) -> None:
        if self.tqdm is None:
            from tqdm import tqdm

            self.tqdm = tqdm(total=total, unit="img", desc="  predicting", leave=False, file=sys.stderr)
        self.tqdm.update(done - self.tqdm.n)

    def __exit__(self, *exc) -> None:
        if self.tqdm is not None:
            self.tqdm.close()
