"""A page for every evaluation and one for every team, linked from `index.html` and its plot, and
the board's one stylesheet (`STYLE`, for these pages and `index.html`).

`runs/<record file name>.html`: one record's view (`harness.view`: verdict, counts, declared /
measured / credited, claims and score, what may be declared, accuracy and the checks against
memorised test images with their figures, warnings and errors, the per-layer receipt, provenance
with the hashes of the submission's files) as HTML; `teams/<team>.html`: the team's evaluations in
time order, each linked to its page, with the team's slide (`teams/<team>.png`, written by
`render`) shown and linked. Pure functions from a ranked `Board` to HTML text; every text of a
record is escaped, its paths shown relative to the submission directory (`text.relative`: never the
instructor's absolute paths); no script, no network: the pages work from files.
"""

from __future__ import annotations

import hashlib
import html

from .. import view
from ..record import slug
from .ranking import Board, Entry

STYLE = r"""
body { font: 18px/1.45 system-ui, "DejaVu Sans", sans-serif; margin: 1.5em auto; max-width: 1400px;
       padding: 0 1em; color: #1a1a1a; background: #fff; }
h1 { font-size: 1.9em; margin: .3em 0; } h2 { font-size: 1.35em; margin-top: 1.5em; }
table { border-collapse: collapse; } th, td { padding: .3em .6em; border-bottom: 1px solid #ddd; text-align: left; }
th { background: #24415e; color: #fff; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1b6e2d; font-weight: bold; } .no { color: #8a1c1c; font-weight: bold; }
pre { background: #f3f6f9; padding: .6em; overflow-x: auto; white-space: pre-wrap; } code { font-size: .9em; }
nav a { margin-right: 1.2em; }
figure { margin: 1em 0; }
figure.slide img { width: 100%; max-width: 1280px; height: auto; border: 1px solid #ddd; }
/* index.html: larger and wider, its tables sortable */
body.index { font-size: 20px; line-height: 1.4; max-width: 1900px; }
.index h1 { font-size: 2.2em; margin: 0 0 .2em; } .index h2 { font-size: 1.5em; margin-top: 1.6em; }
.summary, .legend { color: #444; } figure svg { width: 100%; height: auto; }
.note { color: #5a4a00; background: #fff6d6; border-left: 4px solid #e0b400; padding: .3em .6em; margin: .4em 0; }
.scroll { overflow-x: auto; } table.sortable { width: 100%; font-size: 18px; }
.sortable th, .sortable td { padding: .4em .45em; } .sortable td { white-space: nowrap; }
.sortable td.name { white-space: normal; overflow-wrap: anywhere; min-width: 6em; }
@media (max-width: 1700px) {
  body.index { padding: 0 .6em; } table.sortable { font-size: 16px; }
  .sortable th, .sortable td { padding: .35em .3em; }
  .narrow-hidden { display: none; }
}
.sortable th { cursor: pointer; user-select: none; }
.sortable th:hover, .sortable th:focus { background: #34618e; outline: none; }
th .arrow::after { content: ""; margin-left: .3em; }
th[aria-sort=ascending] .arrow::after { content: "\25B2"; }
th[aria-sort=descending] .arrow::after { content: "\25BC"; }
.sortable tbody tr:nth-child(even) { background: #f3f6f9; } .sortable tbody tr:hover { background: #e2ecf6; }
tr.top1 td:first-child { background: #f5d76e; } tr.top2 td:first-child { background: #d5d8dc; }
tr.top3 td:first-child { background: #e3b58a; } #others td:last-child { white-space: normal; }
.skipped { color: #8a1c1c; }
"""


def run_href(entry: Entry) -> str:
    """Where an evaluation's page is, relative to the leaderboard folder."""
    return f"runs/{entry.path.stem}.html"


def team_href(team: str) -> str:
    """Where a team's page is, relative to the leaderboard folder (slug and a short hash of the name)."""
    return f"teams/{slug(team, 'team')}-{hashlib.sha256(team.encode()).hexdigest()[:8]}.html"


def team_slide_href(team: str) -> str:
    """Where a team's slide (PNG) is, relative to the leaderboard folder: beside the team's page."""
    return team_href(team).removesuffix(".html") + ".png"


def run_page(entry: Entry, board: Board) -> str:
    """The page of one evaluation (it lives in runs/, hence the ../ of its links)."""
    r = entry.record
    e = html.escape
    nav = (f"<nav><a href=\"../index.html\">&larr; leaderboard</a><a href=\"../{team_href(r.team)}\">"
           f"all of team {e(r.team)}</a></nav>")
    shown = view.build(r, relative_paths=True, record_file=entry.path.name)
    body = view.html(shown, when=f"Evaluated {entry.time.strftime('%Y-%m-%d %H:%M UTC')}")
    return page(f"{r.team} / {r.name}", f"{nav}\n{body}")


def team_page(team: str, board: Board, slides: bool = True) -> str:
    """The page of one team: its evaluations in time order and its slide (it lives in teams/; `slides`:
    whether its slide is written beside it)."""
    e = html.escape
    rows = []
    for entry in board.team_entries(team):
        r = entry.record
        link = f'<a href="../{run_href(entry)}">{e(r.name)}</a>'
        rows.append([entry.time.strftime("%Y-%m-%d %H:%M"), link, r.status,
                     "" if r.accuracy is None else f"{r.accuracy:.2%}",
                     "" if r.score is None else f"{r.score.total:.4f}", "yes" if r.eligible else "no"])
    slide = team_slide_href(team).removeprefix("teams/")
    figure = (f'<figure class="slide"><a href="{e(slide, quote=True)}"><img src="{e(slide, quote=True)}" '
              f'alt="{e(team, quote=True)}: its submissions, accuracy against score" width="1280" height="720">'
              f'</a><figcaption>The team\'s slide (PNG, <a href="{e(slide, quote=True)}">full size</a>; a PDF: '
              f'<code>python -m harness plot --team TEAM</code>).</figcaption></figure>') if slides else ""
    body = (f"<nav><a href=\"../index.html\">&larr; leaderboard</a></nav><h1>Team {e(team)}</h1>"
            f"<p>{len(rows)} evaluation{'s' if len(rows) != 1 else ''}, oldest first.</p>"
            + view.html_table(["when (UTC)", "submission", "status", "accuracy", "score", "eligible"], rows,
                              raw={1}, numeric={3, 4}) + figure)
    return page(f"team {team}", body)


def page(title: str, body: str, css_class: str = "") -> str:
    """A whole page: `body` under `title`, with the board's stylesheet (`css_class`: the body's class)."""
    cls = f' class="{css_class}"' if css_class else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body{cls}>\n{body}\n</body></html>\n")
