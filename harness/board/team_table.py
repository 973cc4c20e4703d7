"""The table beside a team's slide: its attempts, numbered in time order as on the plot, each with
its date, accuracy and score (or why it has none), coloured by date as the plot's points.

At most TABLE_ROWS rows: the first attempt, the best, the latest and the most recent others; a
last line counts those left out. The numbers are the attempts' places among all of the team's
evaluations, so that they do not change when some are left out.
"""

from __future__ import annotations

from ..record import percent
from .ranking import Entry
from .style import TABLE_ROWS, TABLE_SIZE

COLUMNS = (0.0, 0.095, 0.135, 0.72, 0.98)  # shares of its width: #, marker, date, accuracy, score (right)


def attempt_colours(entries: list[Entry]) -> dict[int, tuple]:
    """A colour per entry (by id) from its time: viridis without its pale yellow end, oldest darkest."""
    import numpy as np
    from matplotlib import colormaps

    times = [e.time.timestamp() for e in entries]
    lo, hi = (min(times), max(times)) if times else (0.0, 1.0)
    cmap = colormaps["viridis"]
    return {id(e): cmap(float(np.interp(t, [lo, hi if hi > lo else lo + 1], [0.0, 0.82]))) for e, t in
            zip(entries, times, strict=True)}


def numbered(entries: list[Entry], best: Entry | None, rows: int = TABLE_ROWS) -> list[tuple[int, Entry]]:
    """(number, entry) of the attempts listed, in time order: all when they fit, else the first, the
    best, the latest and the most recent others."""
    pairs = list(enumerate(entries, 1))
    if len(pairs) <= rows:
        return pairs
    keep = {1, len(pairs)} | {k for k, e in pairs if e is best}
    for k, _ in reversed(pairs):
        if len(keep) >= rows - 1:  # one line says how many are left out
            break
        keep.add(k)
    return [(k, e) for k, e in pairs if k in keep]


def attempt_table(fig, box, listed: list[tuple[int, Entry]], total: int, colours: dict, best: Entry | None):
    """Draw the table into a new axes of `fig` at `box` (left, bottom, width, height, figure shares)."""
    import numpy as np

    ax = fig.add_axes(box)
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    lines = len(listed) + 1 + (total > len(listed))
    ax.set_ylim(max(lines, 8) + 0.5, 0.5)  # rows from the top, one unit each, at least 8 units tall
    text = {"fontsize": TABLE_SIZE, "va": "center", "parse_math": False}
    x = COLUMNS
    for at, title, ha in ((x[0], "#", "left"), (x[2], "date", "left"), (x[3], "accuracy", "right"),
                          (x[4], "score", "right")):
        ax.text(at, 1, title, ha=ha, **text, color="#444", fontweight="bold")
    ax.axhline(1.5, color="#999", lw=1)
    for y, (k, e) in enumerate(listed, 2):
        r = e.record
        weight = "bold" if e is best else "normal"
        ax.text(x[0], y, str(k), **text, fontweight=weight)
        ax.text(x[2], y, f"{e.time:%b %d %H:%M}", **text, fontweight=weight)
        if r.accuracy is not None:
            ax.text(x[3], y, percent(r.accuracy, 2), **text, ha="right", fontweight=weight)
        ax.text(x[4], y, f"{r.score.total:.4f}" if r.score is not None else r.status, **text, ha="right",
                fontweight=weight, color="black" if r.score is not None else "#8a1c1c")
    marked = [(y, e) for y, (_, e) in enumerate(listed, 2) if e.plottable]
    if marked:  # one collection for all the rows' markers
        ax.scatter(np.full(len(marked), x[1]), [y for y, _ in marked], s=90, linewidths=2.2, clip_on=False,
                   facecolors=[colours[id(e)] if e.record.eligible else (1.0, 1.0, 1.0, 1.0) for _, e in marked],
                   edgecolors=[(0.0, 0.0, 0.0, 1.0) if e is best else colours[id(e)] for _, e in marked])
    if total > len(listed):
        ax.text(x[0], len(listed) + 2, f"{total - len(listed)} more not listed", **text, color="#666",
                fontstyle="italic")
    return ax
