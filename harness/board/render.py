"""Write the leaderboard's five files (tables and plots of a ranked `Board`) and its pages (one per
evaluation in runs/, one per team in teams/, each team's slide as a PNG beside its page), each
atomically."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import pages
from .ranking import Board, LeaderboardError
from .tables import to_csv, to_html, to_markdown

_DRAWING = ("plots.py", "axes.py", "labels.py", "team_table.py", "style.py")  # the slides' code, in their stamp
FILES = ("leaderboard.md", "leaderboard.csv", "leaderboard.png", "leaderboard.svg", "index.html")


def render(board: Board, out: str | Path, slides: bool = True) -> dict[str, Path]:
    """Write the five files of FILES into `out`, each replaced atomically, and the pages (with each
    team's slide unless not `slides`); returns the five files by name."""
    from . import plots  # matplotlib only when rendering

    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LeaderboardError(f"cannot create the output folder {folder}: {err}") from None
    written = {name: folder / name for name in FILES}
    tmp = {name: folder / f".{name}.{os.getpid()}.tmp" for name in FILES}
    try:
        plots.save_leaderboard(board, tmp["leaderboard.png"], tmp["leaderboard.svg"])
        tmp["leaderboard.md"].write_text(to_markdown(board), encoding="utf-8")
        tmp["leaderboard.csv"].write_text(to_csv(board), encoding="utf-8", newline="")
        tmp["index.html"].write_text(to_html(board, tmp["leaderboard.svg"].read_bytes()), encoding="utf-8")
        for name in FILES:  # readers (a web server, a browser) never see half a file
            os.replace(tmp[name], written[name])
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    _pages(board, folder, slides)
    return written


def _pages(board: Board, folder: Path, slides: bool) -> None:
    """The page of every evaluation and of every team, each team's slide; pages and slides of records
    and teams no longer there are removed."""
    made = {pages.run_href(e): pages.run_page(e, board) for e in board.collection.entries}
    made.update({pages.team_href(t): pages.team_page(t, board, slides) for t in board.teams})
    for sub in ("runs", "teams"):
        (folder / sub).mkdir(exist_ok=True)
    for rel, text in made.items():
        tmp = folder / f"{rel}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / rel)
    drawn = set(_slides(board, folder) if slides else ())
    for old in [*(folder / "runs").glob("*.html"), *(folder / "teams").glob("*.html"),
                *(folder / "teams").glob("*.png")]:
        rel = old.relative_to(folder).as_posix()
        if rel not in made and rel not in drawn:
            old.unlink(missing_ok=True)


def _slides(board: Board, folder: Path) -> list[str]:
    """Each team's slide, a PNG beside its page (1280 x 720: the web page's size, cheaper than the
    1920 x 1080 of `plot --team`), redrawn only when what it shows changed (`slide_stamp`, kept in the
    PNG's Comment); returns them relative to `folder`."""
    from PIL import Image

    from .plots import save_team
    from .style import WEB_SLIDE_DPI

    done = []
    for team in board.teams:
        rel = pages.team_slide_href(team)
        stamp = slide_stamp(board, team)
        try:
            with Image.open(folder / rel) as old:
                fresh = getattr(old, "text", {}).get("Comment") == stamp
        except (OSError, ValueError, AttributeError):
            fresh = False
        if not fresh:
            tmp = folder / f"{rel}.{os.getpid()}.tmp"
            (path,) = save_team(board, team, tmp, dpi=WEB_SLIDE_DPI, formats=("png",), stamp=stamp)
            os.replace(path, folder / rel)
        done.append(rel)
    return done


def slide_stamp(board: Board, team: str) -> str:
    """A hash of all that a team's slide shows (every scored point, the team's evaluations, its row, the
    rules) and of the code that draws it: equal stamps, equal slides."""
    r = [x for x in board.ranked + board.unranked if x.team == team]
    field = sorted((e.path.name, e.record.team == team, e.score, e.accuracy, e.record.eligible)
                   for e in board.collection.entries if e.plottable)
    mine = [(e.path.name, e.time.isoformat(), e.record.status, e.record.accuracy, e.plottable and e.score,
             e.record.eligible) for e in board.team_entries(team)]
    row = [(x.rank, x.reason, x.best.path.name if x.best else None) for x in r]
    data = json.dumps([team, board.rules.accuracy_threshold, board.reference, len(board.ranked), field, mine, row])
    code = hashlib.sha256()
    for name in _DRAWING:
        code.update((Path(__file__).parent / name).read_bytes())
    return hashlib.sha256(code.digest() + data.encode()).hexdigest()
