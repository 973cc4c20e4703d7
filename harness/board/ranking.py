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

One set of rules per board. Records made under different rules (`RULES_OF_A_BOARD`, the scoring
version, the test set, the private images) are never ranked together: with one set, the board
takes its threshold and references from the records; with several, `build` refuses and lists
them, unless the caller picks one (`pick`: the id of a set, or the rules of a config file), and
the board then says how many records it leaves out.

Records are read, never written: a record that cannot be read or validated is reported
in `Collection.skipped` and left out; it never stops the rendering. Files whose names
start with a dot (temporary files of a write in progress) are not records.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import record as rec_io
from ..config import Rules
from ..errors import EXIT_INVALID, HarnessError
from ..record import Record
from ..score import Reference, reference_score
from ..text import first_line, relative

TIE_DECIMALS = 10  # score totals equal to this many decimals are ties
# The rules that decide a score or an eligibility: records that differ in one are not comparable.
RULES_OF_A_BOARD = ("reference_params", "reference_macs", "accuracy_threshold", "unseen_images", "unseen_margin",
                    "require_unseen", "private_images", "private_gap", "flip_images", "flip_gap", "shift_images",
                    "shift_gap")


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
    def score(self) -> float:
        """The score total of a scored record (plottable, or counted)."""
        if self.record.score is None:
            raise LeaderboardError(f"{self.path.name}: the board asked for the score of a record without one")
        return self.record.score.total

    @property
    def accuracy(self) -> float:
        """The test accuracy of an evaluated record (plottable, or counted)."""
        if self.record.accuracy is None:
            raise LeaderboardError(f"{self.path.name}: the board asked for the accuracy of a record without one")
        return self.record.accuracy

    @property
    def counts(self) -> bool:
        """Eligible and complete enough to rank."""
        r = self.record
        return r.eligible and r.status == "ok" and r.accuracy is not None and r.score is not None


@dataclass(frozen=True)
class Skipped:
    path: Path
    problem: str


@dataclass(frozen=True)
class RuleSet:
    """The rules a group of records was judged by: `key` holds what must be equal to rank together."""

    key: tuple
    entries: tuple[Entry, ...]

    @property
    def ident(self) -> str:
        """A short, stable name of the set (the first 6 hex digits of a hash of its key)."""
        return hashlib.sha256(json.dumps(self.key, default=str).encode()).hexdigest()[:6]

    @property
    def values(self) -> dict:
        return dict(self.key[0])

    def describe(self, others: Sequence[tuple] = (), data: bool = True) -> str:
        """One line: the id, the number of records and their dates, and where its key differs from the
        keys `others` (all of it when there are none); the rules alone when not `data`."""
        times = sorted(e.time for e in self.entries)
        span = f"{times[0]:%Y-%m-%d}" + (f" to {times[-1]:%Y-%m-%d}" if times[-1].date() != times[0].date() else "")
        parts = [_differences(self.key[0], [o[0] for o in others])]
        for i, name in enumerate(("scoring version", "test set", "private images")[:3 if data else 0], 1):
            if not others or any(o[i] != self.key[i] for o in others):
                parts.append(f"{name} {'none' if self.key[i] is None else str(self.key[i])[:12]}")
        n = len(self.entries)
        return f"rules {self.ident}: {n} record{'s' * (n != 1)} ({span}): " + "; ".join(p for p in parts if p)


@dataclass
class Collection:
    entries: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


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
    notes: list[str] = field(default_factory=list)  # what a reader must know (other rules, no roster), shown

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
        if rec.kind != "evaluate":  # a profile's record: no accuracy, nothing to rank
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
            ranked.append(Row(team, None, min(good, key=_rank_key), len(entries), last))  # best: never None
        else:
            near = _closest(entries)
            unranked.append(Row(team, None, None, len(entries), last, _reason(near), near))
    ranked.sort(key=lambda row: (*_rank_key(row.best), row.team) if row.best is not None else ())
    ranked = [Row(r.team, i, r.best, r.submissions, r.last) for i, r in enumerate(ranked, 1)]
    unranked.sort(key=lambda row: (row.team.casefold(), row.team))
    return ranked, unranked


def build(results: str | Path, defaults: Rules, pick: str | Rules | None = None) -> Board:
    """Collect and rank the records of `results` made under one set of rules: the only one, or the
    one `pick` names (a set's id, or a config's rules). The board's threshold and references are
    the records' own; `defaults` fills in what old records did not record."""
    collection = collect(results)
    sets = rule_sets(collection.entries)
    notes = []
    if pick is None and len(sets) > 1:
        raise LeaderboardError(_mixed(results, sets))
    shown = sets[0] if sets else None  # the one set, unless `pick` names another
    if pick is not None and sets:
        chosen = [s for s in sets if (s.ident == pick if isinstance(pick, str) else
                                      s.key[0] == _board_rules(pick.model_dump()))]
        if len(chosen) != 1:
            raise LeaderboardError(_unpicked(results, sets, pick, chosen))
        shown = chosen[0]
        left = len(collection.entries) - len(shown.entries)
        if left:
            notes.append(f"{left} record{'s' * (left != 1)} made under other rules "
                         f"{'are' if left != 1 else 'is'} not shown (this board: rules {shown.ident})")
        collection.entries = list(shown.entries)
    rules = defaults
    if shown is not None:
        recorded = {k: v for k, v in shown.values.items() if v is not None}
        rules = Rules.model_validate({**defaults.model_dump(), **recorded})
    if any(e.record.provenance.team_from != "roster" for e in collection.entries):
        notes.append("teams as their submission.yaml names them: no roster binds a team to its folder")
    ranked, unranked = rank(collection)
    return Board(ranked, unranked, collection, rules, reference_score(Reference.of(rules)),
                 datetime.now(timezone.utc).replace(microsecond=0), notes)


def rule_sets(entries: list[Entry]) -> list[RuleSet]:
    """The records grouped by the rules they were judged by, the set with the latest record first."""
    groups: dict[tuple, list[Entry]] = {}
    for e in entries:
        p = e.record.provenance
        key = (_board_rules(p.rules), p.scoring_version, p.dataset_sha256, p.private_sha256)
        groups.setdefault(key, []).append(e)
    sets = [RuleSet(k, tuple(v)) for k, v in groups.items()]
    return sorted(sets, key=lambda s: max(e.time for e in s.entries), reverse=True)


# -- helpers ----------------------------------------------------------------------------------------------

def _board_rules(rules: dict) -> tuple:
    return tuple((k, rules.get(k)) for k in RULES_OF_A_BOARD)


def _differences(mine: tuple, others: list[tuple]) -> str:
    """The rules of `mine` that some other set has otherwise, as `name value`."""
    theirs = [dict(o) for o in others]
    return ", ".join(f"{k} {'unrecorded' if v is None else f'{v:g}'}" for k, v in mine
                     if not theirs or any(t.get(k) != v for t in theirs))


def _mixed(results, sets: list[RuleSet]) -> str:
    lines = [f"the records in {results} were made under {len(sets)} different sets of rules, which one board "
             "cannot rank together:"]
    lines += [f"  {s.describe([o.key for o in sets if o is not s])}" for s in sets]
    lines.append(f"  show one set: --rules {sets[0].ident} (the latest), or --config FILE (the records made "
                 "under that config's rules); or re-evaluate the others under one set of rules")
    return "\n".join(lines)


def _unpicked(results, sets: list[RuleSet], pick: str | Rules, chosen: list[RuleSet]) -> str:
    """Why `pick` names no single set of the records in `results`."""
    if chosen:  # a config's rules, with records of several test sets or private image folders
        lines = [f"the records in {results} made under the config's rules differ in their data:"]
        lines += [f"  {s.describe([o.key for o in chosen if o is not s])}" for s in chosen]
        return "\n".join([*lines, "  show one: --rules ID"])
    if isinstance(pick, str):
        lines = [f"no set of rules {pick!r} among the records in {results}; they were made under:"]
        lines += [f"  {s.describe([o.key for o in sets if o is not s])}" for s in sets]
    else:
        config = (_board_rules(pick.model_dump()), None, None, None)
        lines = [f"no record in {results} was made under the config's rules; against them, the records have:"]
        lines += [f"  {s.describe([config], data=False)}" for s in sets]
    return "\n".join(lines)


def _rank_key(e: Entry) -> tuple:
    return (round(e.score, TIE_DECIMALS), -e.accuracy, e.time, e.path.name)


def _closest(entries: list[Entry]) -> Entry:
    """A team's attempt nearest to eligible: a scored one first, then the highest accuracy, then
    the lowest score, then the latest."""
    def closeness(e: Entry):
        r = e.record
        scored = r.status == "ok" and r.accuracy is not None and r.score is not None
        return (not scored, -(r.accuracy or 0.0), r.score.total if r.score else math.inf, -e.time.timestamp())

    return min(entries, key=closeness)


def _reason(entry: Entry) -> str:
    """Why a team is not ranked: the reasons (and first informative line of the first error) of its
    closest attempt, paths relative to the submission directory (`text.relative`)."""
    r = entry.record
    parts = list(r.reasons) or (["not eligible"] if r.status == "ok" else [f"status {r.status}"])
    if r.errors:
        parts.append(_first_line(relative(r.errors[0], r.directory), 120))
    return relative(f"{r.name}: " + "; ".join(parts), r.directory)


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"provenance.created_at {text!r} is not an ISO-8601 time") from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _first_line(err, limit: int = 200) -> str:
    """The first informative line of an error or message (`text.first_line`: "RuntimeError:" joined
    with what follows, pydantic's count of errors with the field), no absolute path shown."""
    line = first_line(relative(str(err)), limit)
    return line or (type(err).__name__ if isinstance(err, BaseException) else "")
