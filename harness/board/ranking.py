"""The leaderboard's ranking: collect evaluation records and rank the teams.

`harness.board.render` writes the five output files, with `tables` and `plots`.

Ranking rules. Only records of kind "evaluate" count. A team's standing is its best
eligible submission: the lowest score total; ties (scores equal to 1e-10) go to the higher
accuracy, then to the earlier submission. Teams with no eligible submission come after
the ranked ones, alphabetically, with the reasons of their closest attempt (a scored one
first, then the highest accuracy, then the lowest score, then the latest). Every team also
shows how many evaluations it made (errors and invalid ones included) and when it last
submitted. The record's own `eligible` verdict is trusted: it was judged under the rules
stored in its provenance.

Records are read, never written: a record that cannot be read or validated is reported
in `Collection.skipped` and left out; it never stops the rendering. Files whose names
start with a dot (temporary files of a write in progress) are not records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import record as rec_io
from ..config import Rules
from ..errors import EXIT_INVALID, HarnessError
from ..record import Record
from ..score import reference_score

TIE_DECIMALS = 10  # score totals equal to this many decimals are ties


class LeaderboardError(HarnessError):
    """The results folder or the output folder cannot be used."""

    exit_code = EXIT_INVALID


@dataclass(frozen=True)
class Entry:
    """One readable evaluation record, with the file it came from and its time."""

    path: Path
    record: Record
    time: datetime

    @property
    def plottable(self) -> bool:
        r = self.record
        return r.status == "ok" and r.accuracy is not None and r.score is not None and r.score.total > 0

    @property
    def counts(self) -> bool:
        """Eligible and complete enough to rank."""
        r = self.record
        return r.eligible and r.status == "ok" and r.accuracy is not None and r.score is not None


@dataclass(frozen=True)
class Skipped:
    path: Path
    problem: str


@dataclass
class Collection:
    entries: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    ignored: int = 0  # readable records of another kind (profile)


@dataclass(frozen=True)
class Row:
    """A team's line: `best` is its best eligible entry (None when unranked, then `reason` says why)."""

    team: str
    rank: int | None
    best: Entry | None
    submissions: int
    last: datetime
    reason: str = ""
    closest: Entry | None = None  # unranked: the attempt nearest to eligible (the one `reason` describes)


@dataclass
class Board:
    ranked: list[Row]
    unranked: list[Row]
    collection: Collection
    rules: Rules
    reference: float  # ResNet18 float16 score under these rules
    generated: datetime

    def team_entries(self, team: str) -> list[Entry]:
        return sorted((e for e in self.collection.entries if e.record.team == team), key=lambda e: e.time)

    def mixed_versions(self) -> dict[str, list[str]]:
        """Packages whose version differs between the scored records of this board (the measuring
        stage's versions; "unrecorded" for records made before versions were recorded)."""
        seen: dict[str, set[str]] = {}
        scored = [e.record for e in self.collection.entries if e.record.status == "ok"]
        names = {k for r in scored for k in r.provenance.packages}
        for r in scored:
            for name in names:
                seen.setdefault(name, set()).add(r.provenance.packages.get(name, "unrecorded"))
        return {k: sorted(v) for k, v in sorted(seen.items()) if len(v) > 1}

    @property
    def teams(self) -> list[str]:
        return [r.team for r in self.ranked + self.unranked]


def collect(folder: str | Path) -> Collection:
    """Read every record of `folder` (not recursive); unreadable ones go to `skipped`."""
    root = Path(folder)
    if not root.is_dir():
        raise LeaderboardError(f"results folder {root} does not exist (or is not a folder)")
    out = Collection()
    for path in sorted(root.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            rec = rec_io.read(path)
            when = _parse_time(rec.provenance.created_at)
        except (OSError, ValueError) as err:  # JSON, UTF-8 and pydantic errors are ValueErrors
            out.skipped.append(Skipped(path, _first_line(err)))
            continue
        if rec.kind != "evaluate":
            out.ignored += 1
            continue
        out.entries.append(Entry(path, rec, when))
    return out


def rank(collection: Collection) -> tuple[list[Row], list[Row]]:
    """(ranked, unranked) rows, one per team, by the rules of the module docstring."""
    teams: dict[str, list[Entry]] = {}
    for e in collection.entries:
        teams.setdefault(e.record.team, []).append(e)
    ranked, unranked = [], []
    for team, entries in teams.items():
        last = max(e.time for e in entries)
        good = [e for e in entries if e.counts]
        if good:
            ranked.append(Row(team, None, min(good, key=_rank_key), len(entries), last))
        else:
            near = _closest(entries)
            unranked.append(Row(team, None, None, len(entries), last, _reason(near), near))
    ranked.sort(key=lambda row: (*_rank_key(row.best), row.team))
    ranked = [Row(r.team, i, r.best, r.submissions, r.last) for i, r in enumerate(ranked, 1)]
    unranked.sort(key=lambda row: (row.team.casefold(), row.team))
    return ranked, unranked


def build(results: str | Path, rules: Rules) -> Board:
    """Collect and rank the records of `results`."""
    collection = collect(results)
    ranked, unranked = rank(collection)
    return Board(ranked, unranked, collection, rules, reference_score(rules),
                 datetime.now(timezone.utc).replace(microsecond=0))


# -- helpers ----------------------------------------------------------------------------------------------

def _rank_key(e: Entry) -> tuple:
    return (round(e.record.score.total, TIE_DECIMALS), -e.record.accuracy, e.time, e.path.name)


def _closest(entries: list[Entry]) -> Entry:
    """A team's attempt nearest to eligible: a scored one first, then the highest accuracy, then
    the lowest score, then the latest."""
    def closeness(e: Entry):
        r = e.record
        scored = r.status == "ok" and r.accuracy is not None and r.score is not None
        return (not scored, -(r.accuracy or 0.0), r.score.total if r.score else math.inf, -e.time.timestamp())

    return min(entries, key=closeness)


def _reason(entry: Entry) -> str:
    """Why a team is not ranked: the reasons (and first error) of its closest attempt."""
    r = entry.record
    parts = list(r.reasons) or (["not eligible"] if r.status == "ok" else [f"status {r.status}"])
    if r.errors:
        parts.append(_first_line(r.errors[0], 120))
    return f"{r.name}: " + "; ".join(parts)


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"provenance.created_at {text!r} is not an ISO-8601 time") from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _first_line(err, limit: int = 200) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    if len(text) > 1 and "validation error" in line:  # pydantic: say which field
        line = f"{line}: {text[1].strip()}"
    return line if len(line) <= limit else line[: limit - 1] + "…"
