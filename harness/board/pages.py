"""A page for every evaluation and one for every team, linked from `index.html` and its plot.

`runs/<record file name>.html`: one record as a page (verdict, accuracy, score, declared /
measured / credited, the checks against memorised test images with their figures, the private
one's too, the per-layer receipt, warnings and errors, provenance with the hashes of the
submission's files); `teams/<team>.html`: the team's evaluations in time
order, each linked to its page, with the team's slide (`teams/<team>.png`, written by `render`)
shown and linked. Pure functions from a ranked `Board` to HTML text; every text of a record is
escaped, its paths shown relative to the submission directory (`text.relative`: never the
instructor's absolute paths); no script, no network: the pages work from files.
"""

from __future__ import annotations

import hashlib
import html
import re

from ..record import describe
from ..text import relative
from .ranking import Board, Entry

_KEYS = ("structured_pruning", "unstructured_pruning", "weight_bits", "activation_bits")
_STYLE = """
body { font: 18px/1.45 system-ui, "DejaVu Sans", sans-serif; margin: 1.5em auto; max-width: 1400px;
       padding: 0 1em; color: #1a1a1a; background: #fff; }
h1 { font-size: 1.9em; margin: .3em 0; } h2 { font-size: 1.35em; margin-top: 1.5em; }
table { border-collapse: collapse; } th, td { padding: .3em .6em; border-bottom: 1px solid #ddd; text-align: left; }
th { background: #24415e; color: #fff; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1b6e2d; font-weight: bold; } .no { color: #8a1c1c; font-weight: bold; }
pre { background: #f3f6f9; padding: .6em; overflow-x: auto; white-space: pre-wrap; } code { font-size: .9em; }
nav a { margin-right: 1.2em; }
figure.slide { margin: 1em 0; }
figure.slide img { width: 100%; max-width: 1280px; height: auto; border: 1px solid #ddd; }
"""


def run_href(entry: Entry) -> str:
    """Where an evaluation's page is, relative to the leaderboard folder."""
    return f"runs/{entry.path.stem}.html"


def team_href(team: str) -> str:
    """Where a team's page is, relative to the leaderboard folder (slug and a short hash of the name)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", team).strip("-")[:40] or "team"
    return f"teams/{slug}-{hashlib.sha256(team.encode()).hexdigest()[:8]}.html"


def team_slide_href(team: str) -> str:
    """Where a team's slide (PNG) is, relative to the leaderboard folder: beside the team's page."""
    return team_href(team).removesuffix(".html") + ".png"


def run_page(entry: Entry, board: Board) -> str:
    """The page of one evaluation (it lives in runs/, hence the ../ of its links)."""
    r = entry.record
    e = html.escape
    verdict = ('<span class="ok">ELIGIBLE</span>' if r.eligible
               else f'<span class="no">not eligible</span>: {e(_rel("; ".join(r.reasons) or r.status, r))}')
    parts = [f"<nav><a href=\"../index.html\">&larr; leaderboard</a><a href=\"../{team_href(r.team)}\">"
             f"all of team {e(r.team)}</a></nav>",
             f"<h1>{e(r.team)} / {e(r.name)}</h1>",
             f"<p>{verdict}. Evaluated {e(entry.time.strftime('%Y-%m-%d %H:%M UTC'))}, status {e(r.status)}.</p>"]
    facts = []
    if r.accuracy is not None:
        facts.append(("accuracy", f"{r.accuracy:.2%} ({r.correct:,} of {r.total:,})"))
    if r.score is not None:
        facts.append(("score", f"{r.score.total:.4f} = {r.score.params_term:.4f} (weights) + "
                               f"{r.score.ops_term:.4f} (MACs)"))
    if r.params is not None:
        facts.append(("weights w, MACs f", f"{r.params:,}, {r.macs:,} per image"))
    facts += [(f"{c.name} check", describe(c)) for c in r.checks]
    if r.flip is not None:
        f = r.flip
        facts.append(("flip check", f"{f.accuracy:.2%} original, {f.flipped_accuracy:.2%} flipped on {f.subset} "
                                    "images" + (" (flagged)" if f.flagged else "")))
    parts.append(_table(["", ""], [[k, v] for k, v in facts], heads=False))
    if r.declared is not None and r.measured is not None and r.effective is not None:
        rows = [[k, *(_value(getattr(c, k)) for c in (r.declared, r.measured, r.effective))] for k in _KEYS]
        claims = "verified" if r.claims_verified else "NOT verified: " + e(_rel("; ".join(r.claim_failures), r))
        parts += ["<h2>Compression: declared, measured, credited</h2>",
                  _table(["", "declared", "measured", "credited"], rows),
                  f"<p>Claims {claims}.</p>"]
    for title, items in (("Errors", r.errors), ("Warnings", r.warnings)):
        if items:
            parts.append(f"<h2>{title}</h2>" + "".join(f"<pre>{e(_rel(x, r))}</pre>" for x in items))
    if r.layers:
        rows = [[x.layer, x.op, f"{x.params:,}", f"{x.macs:,}", f"{x.zeros:,}", _value(x.weight_bits),
                 _value(x.activation_bits)] for x in r.layers]
        parts += ["<h2>Receipt: every counted operation</h2>",
                  _table(["layer", "op", "weights", "MACs", "zeros", "w bits", "a bits"], rows, numeric=range(2, 7))]
    p = r.provenance
    prov = [["harness", p.harness_version], ["scoring version", p.scoring_version], ["isolation", p.isolation or ""],
            ["device", p.device or ""], ["torch", p.torch_version or ""],
            *([k, v] for k, v in sorted(p.packages.items()) if k != "torch"),
            ["test set sha256", p.dataset_sha256 or ""],
            ["submission sha256", p.submission_sha256 or ""], ["record", entry.path.name]]
    prov += [[f"rule {k}", _value(v)] for k, v in sorted(p.rules.items())]
    parts += ["<h2>Provenance</h2>", _table(["", ""], prov, heads=False)]
    if p.files:
        parts += ["<h2>Files (sha256)</h2>", _table(["file", "sha256"], [[k, v] for k, v in p.files.items()])]
    return _page(f"{r.team} / {r.name}", "\n".join(parts))


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
            + _table(["when (UTC)", "submission", "status", "accuracy", "score", "eligible"], rows, raw={1},
                     numeric={3, 4}) + figure)
    return _page(f"team {team}", body)


def _rel(text: str, r) -> str:
    """A record's text with its paths relative to the submission directory."""
    return relative(text, r.directory)


def _value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}" if v < 1 else f"{v:g}"
    return str(v)


def _table(columns: list[str], rows: list[list], *, heads: bool = True, numeric=(), raw=()) -> str:
    """A table; cells escaped unless their column is in `raw` (links made here), right-aligned in `numeric`."""
    head = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>" if heads else ""
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = str(cell) if i in raw else html.escape(str(cell))
            cells.append(f'<td class="num">{text}</td>' if i in numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}\n" + "\n".join(body) + "</table>"


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")
