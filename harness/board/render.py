"""Write the leaderboard's five files (tables and plots of a ranked `Board`) and its pages (one per
evaluation in runs/, one per team in teams/), each atomically."""

from __future__ import annotations

import os
from pathlib import Path

from . import pages
from .ranking import Board, LeaderboardError
from .tables import to_csv, to_html, to_markdown

FILES = ("leaderboard.md", "leaderboard.csv", "leaderboard.png", "leaderboard.svg", "index.html")


def render(board: Board, out: str | Path) -> dict[str, Path]:
    """Write the five files of FILES into `out`, each replaced atomically; returns them by name."""
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
    _pages(board, folder)
    return written


def _pages(board: Board, folder: Path) -> None:
    """The page of every evaluation and of every team; pages of records no longer there are removed."""
    made = {pages.run_href(e): pages.run_page(e, board) for e in board.collection.entries}
    made.update({pages.team_href(t): pages.team_page(t, board) for t in board.teams})
    for sub in ("runs", "teams"):
        (folder / sub).mkdir(exist_ok=True)
    for rel, text in made.items():
        tmp = folder / f"{rel}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / rel)
    for old in [*(folder / "runs").glob("*.html"), *(folder / "teams").glob("*.html")]:
        if old.relative_to(folder).as_posix() not in made:
            old.unlink(missing_ok=True)
