"""The leaderboard's tables: Markdown, CSV and the self-contained web page (`index.html`).

Pure functions from a ranked `ranking.Board` to text. The page holds the plot as inline SVG
(each point a link to its evaluation's page, `pages`), links each team to its page and each
submission to its evaluation's, and sorts its tables with a small inline script: it works from
a file, offline; its stylesheet is the pages' (`pages.STYLE`). The board's notes follow the
summary everywhere. The ranked table fits a window 1,280 px wide (a projector's): long names wrap,
and below 1,700 px the two score terms (`NARROW_HIDDEN`; the score stays) are left out.
"""

from __future__ import annotations

import csv
import html
import io
import math
from datetime import datetime, timezone
from string import Template

from .. import record as rec_io
from ..record import percent
from .pages import page, run_href, team_href
from .ranking import Board, Row


def to_markdown(board: Board) -> str:
    """The ranking as Markdown tables: ranked teams, then the others, then skipped records."""
    notes = [f"> Note: {_md_escape(n)}" for n in board.notes]
    lines = ["# Leaderboard", "", _summary(board), "", *(notes + [""] if notes else []),
             *_md_table(_columns(board), board.ranked)]
    if not board.ranked:
        lines.append("\n*No eligible submission yet.*")
    if board.unranked:
        lines += ["", "## Not ranked (no eligible submission)", "", *_md_table(_OTHER_COLUMNS, board.unranked)]
    if board.collection.skipped:
        lines += ["", "## Records that could not be read (skipped)", ""]
        lines += [f"- `{s.path.name}`: {_md_escape(s.problem)}" for s in board.collection.skipped]
    lines += ["", f"Score = params term + ops term, lower is better; eligible = accuracy ≥ "
                  f"{percent(board.rules.accuracy_threshold)}, every claim verified, every memorisation check passed. "
                  f"ResNet18 float16 scores {board.reference:.2f}. Declared: structured + unstructured pruning, "
                  "weight / activation bits.", ""]
    return "\n".join(lines)


def to_csv(board: Board) -> str:
    """One row per team in ranking order (unranked teams last, rank empty), with a header row."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", "team", "submission", "accuracy", "params", "macs", "structured_pruning",
                     "unstructured_pruning", "weight_bits", "activation_bits", "params_term", "ops_term", "score",
                     "submissions", "last_submitted", "checks", "reason"])
    for row in board.ranked + board.unranked:
        cells: list = [row.rank or "", _csv_text(row.team)]
        if row.best is not None and row.best.record.score is not None:  # ranked: scored
            r, s = row.best.record, row.best.record.score
            d = r.declared or rec_io.Compression()
            cells += [_csv_text(r.name), f"{r.accuracy:.6f}", r.params, r.macs, d.structured_pruning,
                      d.unstructured_pruning, d.weight_bits, d.activation_bits, f"{s.params_term:.6f}",
                      f"{s.ops_term:.6f}", f"{s.total:.6f}"]
        else:
            cells += [""] * 11
        last = row.last.astimezone(timezone.utc).isoformat(timespec="seconds")
        cells += [row.submissions, last, _checks(row), _csv_text(row.reason)]
        writer.writerow(cells)
    return buf.getvalue()


def to_html(board: Board, svg: bytes) -> str:
    """A self-contained page: the plot (inline SVG) and the sortable tables; no network."""
    links = {"team": lambda r: team_href(r.team), "submission": lambda r: run_href(r.best) if r.best else None,
             "reason": lambda r: run_href(r.closest) if r.closest else None}
    ranked = _html_table("ranking", _columns(board), board.ranked, "No eligible submission yet.", links)
    other = ""
    if board.unranked:
        other = "<h2>Not ranked: no eligible submission</h2>\n" + _html_table("others", _OTHER_COLUMNS,
                                                                                board.unranked, "", links)
    skipped = ""
    if board.collection.skipped:
        items = "".join(f"<li><code>{html.escape(s.path.name)}</code>: {html.escape(s.problem)}</li>"
                        for s in board.collection.skipped)
        skipped = f"<h2>Records that could not be read (skipped)</h2>\n<ul class=\"skipped\">{items}</ul>"
    text = svg.decode("utf-8")
    image = text[text.index("<svg"):].replace("<svg", '<svg id="plot" role="img" aria-label="Test accuracy '
                                              'against score (log scale) of every evaluated submission"', 1)
    notes = "".join(f'<p class="note">Note: {html.escape(n)}</p>\n' for n in board.notes)
    body = _BODY.substitute(summary=html.escape(_summary(board)), notes=notes, image=image, ranked=ranked,
                            other=other, skipped=skipped, threshold=percent(board.rules.accuracy_threshold),
                            reference=f"{board.reference:.2f}")
    return page("CIFAR-10 compression challenge: leaderboard", body, "index")


# -- columns: (header, kind for sorting, first sort direction, value for sorting, text shown) -------------

def _best(attr):
    return lambda row: None if row.best is None else attr(row.best.record)


def _declared(row: Row):
    return (row.best.record.declared or rec_io.Compression()) if row.best else None


_COLUMNS = [
    ("#", "num", "asc", lambda r: r.rank, lambda r: str(r.rank)),
    ("team", "text", "asc", lambda r: r.team, lambda r: r.team),
    ("submission", "text", "asc", _best(lambda x: x.name), _best(lambda x: x.name)),
    ("accuracy", "num", "desc", _best(lambda x: x.accuracy), _best(lambda x: f"{x.accuracy:.2%}")),
    ("w (params)", "num", "asc", _best(lambda x: x.params), _best(lambda x: _count(x.params))),
    ("f (MACs)", "num", "asc", _best(lambda x: x.macs), _best(lambda x: _count(x.macs))),
    ("pruning s + u", "num", "desc", lambda r: _declared(r).structured_pruning + _declared(r).unstructured_pruning,
     lambda r: f"{_declared(r).structured_pruning:.2f} + {_declared(r).unstructured_pruning:.2f}"),
    ("bits w / a", "num", "asc", lambda r: _declared(r).weight_bits + _declared(r).activation_bits / 100,
     lambda r: f"{_declared(r).weight_bits} / {_declared(r).activation_bits}"),
    ("params term", "num", "asc", _best(lambda x: x.score.params_term), _best(lambda x: f"{x.score.params_term:.4f}")),
    ("ops term", "num", "asc", _best(lambda x: x.score.ops_term), _best(lambda x: f"{x.score.ops_term:.4f}")),
    ("score", "num", "asc", _best(lambda x: x.score.total), _best(lambda x: f"{x.score.total:.4f}")),
    ("submissions", "num", "desc", lambda r: r.submissions, lambda r: str(r.submissions)),
    ("last (UTC)", "num", "desc", lambda r: r.last.timestamp(), lambda r: _when(r.last, "%b %d %H:%M")),
    ("checks", "text", "asc", lambda r: _checks(r), lambda r: _checks(r)),
]

_OTHER_COLUMNS = [
    ("team", "text", "asc", lambda r: r.team, lambda r: r.team),
    ("submissions", "num", "desc", lambda r: r.submissions, lambda r: str(r.submissions)),
    ("last (UTC)", "num", "desc", lambda r: r.last.timestamp(), lambda r: _when(r.last, "%b %d %H:%M")),
    ("checks", "text", "asc", lambda r: _checks(r), lambda r: _checks(r)),
    ("reason", "text", "asc", lambda r: r.reason, lambda r: r.reason),
]


WRAPPED = {"team", "submission", "checks", "reason"}  # columns whose long texts wrap
NARROW_HIDDEN = {"params term", "ops term"}  # left out of a window under 1,700 px wide (the score stays)
_HIDDEN = ' class="narrow-hidden"'


def _columns(board: Board) -> list:
    """The ranking's columns."""
    return _COLUMNS


def _checks(row: Row) -> str:
    """Pass or flag of the checks against memorised test images, never a figure: "passed", "flagged:
    NAMES" (of the team's best, or of its closest attempt when unranked) or "none ran"."""
    entry = row.best or row.closest
    if entry is None or entry.record.kind != "evaluate" or entry.record.status != "ok":
        return ""
    if names := rec_io.flagged(entry.record):
        return "flagged: " + ", ".join(names)
    return "passed" if any(c.ran for c in entry.record.checks) else "none ran"


def _summary(board: Board) -> str:
    c = board.collection
    text = (f"{len(board.ranked)} team{'s' if len(board.ranked) != 1 else ''} ranked, {len(board.unranked)} "
            f"without an eligible submission; "
            f"{len(c.entries)} evaluations; updated {_when(board.generated)}")
    if c.skipped:
        text += f"; {len(c.skipped)} unreadable record{'s' if len(c.skipped) != 1 else ''} skipped"
    mixed = board.mixed_versions()
    if mixed:
        text += ("; records made with different package versions: "
                 + ", ".join(f"{k} {' / '.join(v)}" for k, v in mixed.items()))
    return text


def _when(t: datetime, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    return t.astimezone(timezone.utc).strftime(fmt)


def _count(n: int | None) -> str:
    if n is None:
        return ""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_row(cells) -> str:
    return "| " + " | ".join(_md_escape(c or "") for c in cells) + " |"


def _md_table(columns, rows: list[Row]) -> list[str]:
    return [_md_row(c[0] for c in columns), _md_row("---:" if c[1] == "num" else "---" for c in columns),
            *(_md_row(c[4](row) for c in columns) for row in rows)]


def _csv_text(text: str) -> str:
    """Keep spreadsheets from reading a team's text as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _html_table(ident: str, columns, rows: list[Row], empty: str, links: dict | None = None) -> str:
    head = "".join(f'<th scope="col" data-kind="{kind}" data-first="{first}" tabindex="0" aria-sort="none"'
                   f'{_HIDDEN if h in NARROW_HIDDEN else ""}>'
                   f'{html.escape(h)}<span class="arrow" aria-hidden="true"></span></th>'
                   for h, kind, first, _, _ in columns)
    body = []
    for row in rows:
        cells = []
        for header, kind, _, value, show in columns:
            extra = (" name" if header in WRAPPED else "") + (" narrow-hidden" if header in NARROW_HIDDEN else "")
            v = value(row)
            v = "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
            shown = html.escape(show(row) or "")
            href = (links or {}).get(header, lambda r: None)(row)
            if href and shown:
                shown = f'<a href="{html.escape(href, quote=True)}">{shown}</a>'
            cells.append(f'<td class="{kind}{extra}" data-value="{html.escape(str(v), quote=True)}">{shown}</td>')
        top = f' class="top{row.rank}"' if row.rank is not None and row.rank <= 3 else ""
        body.append(f"<tr{top}>" + "".join(cells) + "</tr>")
    if not rows and empty:
        body.append(f'<tr class="empty"><td colspan="{len(columns)}">{html.escape(empty)}</td></tr>')
    return (f'<div class="scroll"><table id="{ident}" class="sortable"><thead><tr>{head}</tr></thead>\n'
            f'<tbody>\n' + "\n".join(body) + "\n</tbody></table></div>")


_BODY = Template("""<h1>CIFAR-10 compression challenge: leaderboard</h1>
<p class="summary">$summary</p>
$notes<figure>$image</figure>
<p class="legend">Lower score is better. Eligible: accuracy at least $threshold, every claim verified,
every memorisation check passed. ResNet18 in float16 scores $reference. Click a column header to sort;
click again to reverse; click a point, a team or a submission for its page.</p>
$ranked
$other
$skipped
<script>
(function () {
  "use strict";
  function key(cell, kind) {
    var v = cell.getAttribute("data-value");
    if (v === null || v === "") { return null; }
    return kind === "num" ? parseFloat(v) : v.toLowerCase();
  }
  function sortTable(table, th, col) {
    var kind = th.getAttribute("data-kind"), now = th.getAttribute("aria-sort");
    var dir = now === "none" ? (th.getAttribute("data-first") === "desc" ? "descending" : "ascending")
                             : (now === "ascending" ? "descending" : "ascending");
    var sign = dir === "ascending" ? 1 : -1, body = table.tBodies[0];
    var rows = Array.prototype.filter.call(body.rows, function (r) { return !r.classList.contains("empty"); });
    rows.map(function (r) { return { row: r, k: key(r.cells[col], kind), i: +r.getAttribute("data-order") }; })
      .sort(function (a, b) {
        if (a.k === null || b.k === null) { return a.k === b.k ? a.i - b.i : (a.k === null ? 1 : -1); }
        var c = kind === "num" ? a.k - b.k : a.k.localeCompare(b.k);
        return c !== 0 ? sign * c : a.i - b.i;
      })
      .forEach(function (x) { body.appendChild(x.row); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", dir);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r, i) { r.setAttribute("data-order", i); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () { sortTable(table, th, col); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(table, th, col); }
      });
    });
  });
}());
</script>""")
