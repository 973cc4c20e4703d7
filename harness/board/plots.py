"""Figures of the leaderboard: accuracy (%) against score (log scale), sized for a projector.

`save_leaderboard` draws every evaluated submission (eligible filled, not eligible hollow),
the accuracy threshold, the Pareto front of the eligible points, the ResNet18 float16
reference score and each ranked team's best, labelled (then, in grey, the closest attempt of
each team with no eligible submission, when there are at most 30 of them), zoomed on the
eligible points (`axes`: the points outside the range are edge markers at the border); the
board's notes are its footer. `save_team` draws one team's submissions over time for a class
presentation (slide-sized PNG and PDF): zoomed on the team's own attempts, each numbered and
listed with its accuracy and score in a table beside the plot. Labels are placed by
`labels.place_labels` next to their points; points sharing a spot share one label
(`labels.merge_ties`). Constants: `style`. matplotlib (Agg canvas) is imported only here and
in the modules it uses, only when drawing.
"""

from __future__ import annotations

import math
import textwrap
from contextlib import contextmanager
from pathlib import Path

from ..record import flagged, percent
from . import axes
from .axes import xy as _xy  # noqa: F401 - the tests place points as the figures do
from .labels import merge_ties, place_labels, tie_text
from .ranking import Board, Entry
from .style import (
    ARROW_LENGTH,
    ARROW_SHRINK,
    ATTEMPT_SIZE,
    ATTEMPT_TEXT,
    ELIGIBLE,
    FRONT,
    MAX_ATTEMPT_LABELS,
    NOT_ELIGIBLE,
    NOTE_SIZE,
    NOTE_TEXT,
    OTHERS,
    PATH,
    RC,
    SLIDE,
    SLIDE_DPI,
    WIDE,
    WIDE_DPI,
)
from .team_table import attempt_colours, attempt_table, numbered

WHITE, BLACK = (1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 1.0)  # RGBA: a list of colours needs one form


def save_leaderboard(board: Board, png: str | Path, svg: str | Path) -> tuple[Path, Path]:
    """Draw the leaderboard plot and save it as PNG (1920 x 1080) and SVG."""
    with _style():
        fig = leaderboard_figure(board)
        fig.savefig(png, dpi=WIDE_DPI, format="png")
        fig.savefig(svg, format="svg", metadata={"Date": None})
    return Path(png), Path(svg)


def save_team(board: Board, team: str, out: str | Path, dpi: float = SLIDE_DPI,
              formats: tuple[str, ...] = ("png", "pdf"), stamp: str | None = None) -> tuple[Path, ...]:
    """Draw `team`'s figure and save it as `out` with the suffixes of `formats` (slide-sized; the PNG
    at `dpi`: 1920 x 1080 at the default 150); `stamp` goes into the PNG's Comment."""
    base = Path(out)
    if base.suffix.lower() in (".png", ".pdf"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = tuple(base.with_name(f"{base.name}.{kind}") for kind in formats)
    with _style():
        fig = team_figure(board, team)
        for path, kind in zip(paths, formats, strict=True):
            meta = {"CreationDate": None} if kind == "pdf" else ({"Comment": stamp} if stamp else None)
            fig.savefig(path, dpi=dpi, format=kind, metadata=meta)
    return paths


def leaderboard_figure(board: Board):
    """The leaderboard plot as a matplotlib Figure (Agg canvas)."""
    notes = board.notes
    fig, ax = _figure(WIDE, WIDE_DPI, (0.09, 0.115 + 0.022 * len(notes), 0.985, 0.83))
    points = [e for e in board.collection.entries if e.plottable]
    limits = axes.board_limits(board, points)
    axes.draw_frame(ax, board, limits)
    best = {row.best.path for row in board.ranked if row.best is not None}
    ok = [e for e in points if e.record.eligible]
    no = [e for e in points if not e.record.eligible]
    hollow = {"s": 110, "facecolors": "none", "edgecolors": NOT_ELIGIBLE, "linewidths": 2.2}
    axes.scatter(ax, no, limits, links=True, zorder=3, label=f"not eligible ({len(no)})", **hollow)
    axes.scatter(ax, [e for e in ok if e.path not in best], limits, links=True, s=110, color=ELIGIBLE, alpha=0.8,
                 edgecolors="white", linewidths=0.8, zorder=4, label=f"eligible ({len(ok)})")
    caught = [e for e in no if flagged(e.record)]
    if caught:  # pass or flag only: the checks' figures stay on the evaluation's page
        xs, ys = zip(*(axes.xy(e, limits) for e in caught), strict=True)
        ax.scatter(xs, ys, marker="x", s=70, color=NOT_ELIGIBLE, linewidths=2.2, zorder=3, clip_on=False,
                   label=f"check failed ({len(caught)})")
    front = pareto_front(ok)
    if front:
        fx, fy = [e.score for e in front], [100 * e.accuracy for e in front]
        ax.plot(fx + [limits[1]], fy + [fy[-1]], drawstyle="steps-post", color=FRONT, lw=3.5, zorder=2,
                solid_capstyle="butt", label="Pareto front")
    labelled = [(row, row.best) for row in board.ranked if row.best is not None and row.best.plottable]
    bests = [b for _, b in labelled]
    axes.scatter(ax, bests, limits, links=True, s=300, color=ELIGIBLE, edgecolors="black", linewidths=2.2,
                 zorder=5, label="team's best (labelled)")
    outside = axes.outside_legend(ax, points, limits, **hollow)
    counts = axes.edge_counts(ax, points, limits, NOT_ELIGIBLE)
    if not points:
        ax.text(0.5, 0.7, "no evaluation yet", transform=ax.transAxes, ha="center", va="center", fontsize=30,
                color="#888", bbox={"fc": "white", "ec": "none"})
    n_teams = len(board.ranked) + len(board.unranked)
    fig.suptitle("CIFAR-10 compression challenge: accuracy against score", x=0.075, y=0.985, ha="left",
                 fontsize=30, fontweight="bold")
    fig.text(0.075, 0.915, f"{len(board.ranked)} of {n_teams} team{'s' if n_teams != 1 else ''} ranked, "
             f"{len(board.collection.entries)} evaluations, updated {board.generated:%Y-%m-%d %H:%M} UTC"
             + (f"  ({len(board.collection.entries) - len(points)} without a score not shown)"
                if len(points) < len(board.collection.entries) else ""), fontsize=19, color="#444")
    if notes:
        fig.text(0.075, 0.008, "\n".join(f"Note: {n}" for n in notes), fontsize=NOTE_SIZE, color=NOTE_TEXT,
                 va="bottom", ha="left", parse_math=False)
    legend = _wide_legend(fig, ax, outside, axes.reference_entry(board, limits))
    fixed = axes.fixed_texts(ax, board, limits) + [legend] + counts
    dots = [axes.xy(e, limits) for e in points]
    made = _label_groups(ax, [axes.xy(e, limits) for e in bests], [f"{row.rank}. {row.team}" for row, _ in labelled],
                         fixed, dots)
    tries = [(row, row.closest) for row in board.unranked if row.closest is not None and row.closest.plottable]
    if len(tries) <= MAX_ATTEMPT_LABELS:  # unranked teams' closest attempts, in grey, after the ranked ones
        names = [row.team + (f" ({percent(near.accuracy, 2)})" if axes.side(near, limits) else "")
                 for row, near in tries]
        _label_groups(ax, [axes.xy(near, limits) for _, near in tries], names, fixed + made, dots,
                      size=ATTEMPT_SIZE, color=ATTEMPT_TEXT, weight="normal", gid="attempt-label")
    return fig


def team_figure(board: Board, team: str):
    """One team's submissions over time: colour by date, numbered in time order and listed beside the
    plot with their accuracy and score, the path from the first to the best, the field in grey."""
    fig, ax = _figure(SLIDE, SLIDE_DPI, (0.105, 0.125, 0.60, 0.86))
    everyone = [e for e in board.collection.entries if e.plottable]
    mine = board.team_entries(team)
    shown = [e for e in mine if e.plottable]
    limits = axes.team_limits(board, shown, everyone)
    axes.draw_frame(ax, board, limits)
    fixed = axes.fixed_texts(ax, board, limits)
    row = next((r for r in board.ranked + board.unranked if r.team == team), None)
    others = [e for e in everyone if e.record.team != team]
    axes.scatter(ax, others, limits, s=45, color=OTHERS, zorder=2)
    best = row.best if row is not None and row.best is not None else None
    target = best or (shown[-1] if shown else None)
    if target is not None:
        _path(ax, [axes.xy(e, limits) for e in shown if e.time <= target.time])
    colours = attempt_colours(mine)
    for mark in axes.MARKERS.values():  # one collection per kind of marker: cheaper to draw than one a point
        group = [e for e in shown if axes.marker(e, limits) == mark]
        if group:
            xs, ys = zip(*(axes.xy(e, limits) for e in group), strict=True)
            ax.scatter(xs, ys, s=[260 if e is best else 150 for e in group], marker=mark, zorder=5, linewidths=3,
                       clip_on=False, facecolors=[colours[id(e)] if e.record.eligible else WHITE for e in group],
                       edgecolors=[BLACK if e is best else colours[id(e)] for e in group])
    listed = numbered(mine, best)
    if shown:
        marks = [(e, str(k) + (" best" if e is best else "")) for k, e in listed if e.plottable]
        _label_groups(ax, [axes.xy(e, limits) for e, _ in marks], [m for _, m in marks], fixed,
                      [axes.xy(e, limits) for e in everyone], size=15, lines=2)  # the field's grey points too
    else:
        ax.text(0.5, 0.75, "no scored submission", transform=ax.transAxes, ha="center", va="center",
                fontsize=28, color="#888", bbox={"fc": "white", "ec": "none", "alpha": 0.9})
    why = row.reason if best is None and row is not None else ""
    if why:  # an unranked team: why, under the table
        fig.text(0.63, 0.125, "Why not ranked:\n" + "\n".join(textwrap.wrap(why, 50, max_lines=6)), va="bottom",
                 fontsize=13, color="#8a1c1c", parse_math=False, linespacing=1.3)
    attempt_table(fig, (0.63, 0.125 + (0.2 if why else 0), 0.36, 0.63 - (0.2 if why else 0)), listed, len(mine),
                  colours, best)
    _team_legend(fig, ax, board, everyone, limits)
    standing = "no eligible submission yet"
    if best is not None and row is not None:
        standing = f"rank {row.rank} of {len(board.ranked)}, best score {best.score:.4f} at {percent(best.accuracy, 2)}"
    fig.suptitle(team, x=0.085, y=0.985, ha="left", fontsize=30, fontweight="bold", parse_math=False)
    unscored = f" ({len(mine) - len(shown)} without a score)" if len(shown) < len(mine) else ""
    sub = f"{len(mine)} submission{'s' if len(mine) != 1 else ''}{unscored}; {standing}"
    _fit(fig.text(0.085, 0.905, sub, fontsize=17, color="#444", parse_math=False), 0.985)
    return fig


def pareto_front(entries: list[Entry]) -> list[Entry]:
    """The points no other beats on both score (lower) and accuracy (higher), by increasing score."""
    front, top = [], -math.inf
    for e in sorted(entries, key=lambda e: (e.score, -e.accuracy, e.time)):
        if e.accuracy > top:
            front.append(e)
            top = e.accuracy
    return front


# -- helpers ----------------------------------------------------------------------------------------------

def _path(ax, xy: list[tuple[float, float]]) -> None:
    """A team's path through its points: one line, and an arrowhead just short of each point after the
    first (one collection: a slide with many attempts draws fast)."""
    import numpy as np
    from matplotlib.collections import PathCollection
    from matplotlib.path import Path as Shape
    from matplotlib.transforms import IdentityTransform

    if len(xy) < 2:
        return
    ax.plot(*zip(*xy, strict=True), color=PATH, lw=2, zorder=3, solid_capstyle="round")
    screen, px = ax.transData.transform(np.asarray(xy)), ax.figure.dpi / 72.0
    heads, tips = [], []
    for a, b in zip(screen[:-1], screen[1:], strict=True):
        length = float(np.hypot(*(b - a)))
        if length < (ARROW_SHRINK + ARROW_LENGTH) * px:
            continue  # too short for a head
        u = (b - a) / length
        tips.append(b - u * ARROW_SHRINK * px)
        turn = np.array([[u[0], -u[1]], [u[1], u[0]]])
        heads.append(Shape(np.array([[0, 0], [-1, 0.42], [-1, -0.42], [0, 0]]) @ turn.T, closed=True))
    if heads:
        ax.add_collection(PathCollection(heads, sizes=[ARROW_LENGTH ** 2] * len(heads), zorder=3,
                                         offsets=ax.transData.inverted().transform(np.asarray(tips)),
                                         offset_transform=ax.transData, transform=IdentityTransform(),
                                         facecolors=PATH, edgecolors=PATH),
                          autolim=False)


def _label_groups(ax, anchors, names, fixed, dots, lines: int | None = None, **style) -> list:
    """One label per group of anchors sharing a spot (`merge_ties`), listing all its names, placed
    next to the group's first anchor."""
    groups = merge_ties(ax, anchors)
    texts = [tie_text([names[i] for i in g], **({"lines": lines} if lines else {})) for g in groups]
    return place_labels(ax, [anchors[g[0]] for g in groups], texts, obstacles=fixed, points=dots, **style)


def _wide_legend(fig, ax, *extra):
    """The leaderboard's legend above the plot, on one row when it fits the width, else on two (the
    plot then shrinks by a row)."""
    kw = {"loc": "lower left", "bbox_transform": fig.transFigure, "frameon": False, "borderaxespad": 0.3,
          "handletextpad": 0.4, "columnspacing": 1.0}
    box = ax.get_position()
    n = len(ax.get_legend_handles_labels()[0]) + sum(e is not None for e in extra)
    legend = axes.legend(ax, *extra, bbox_to_anchor=(0.07, box.y1), ncol=n, **kw)
    width = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.bbox.width
    if width > 0.985 - 0.07:
        legend.remove()
        ax.set_position((box.x0, box.y0, box.width, box.height - 0.045))
        legend = axes.legend(ax, *extra, bbox_to_anchor=(0.07, box.y1 - 0.045), ncol=math.ceil(n / 2), **kw)
    return legend


def _team_legend(fig, ax, board: Board, everyone: list[Entry], limits) -> None:
    """The slide's legend, above the table, in two columns: the field, its edge markers and the
    reference line, then the team's marks."""
    from matplotlib.legend_handler import HandlerTuple

    field = ax.scatter([], [], s=45, color=OTHERS)
    handles, labels = [field], ["other teams"]
    for entry in (axes.outside_legend(ax, everyone, limits, s=45, color=OTHERS), axes.reference_entry(board, limits)):
        if entry is not None:
            handles.append(entry[0])
            labels.append(entry[1])
    if len(handles) == 1:
        handles.append(ax.scatter([], [], s=0))  # an empty row: the team's marks in the second column
        labels.append("")
    handles += [ax.scatter([], [], s=150, color="#2a788e"),
                ax.scatter([], [], s=150, facecolors="white", edgecolors="#2a788e", linewidths=3)]
    labels += ["eligible", "not eligible"]
    fig.legend(handles, labels, handler_map={tuple: HandlerTuple(ndivide=None, pad=0.1)}, loc="upper left",
               bbox_to_anchor=(0.625, 0.86), ncol=2, frameon=False, borderaxespad=0, fontsize=14,
               handletextpad=0.3, columnspacing=0.8)


def _fit(text, right: float) -> None:
    """Cut `text` (an artist of a figure) with "…" until it ends left of `right` (a share of the width)."""
    renderer, limit, full = text.figure.canvas.get_renderer(), right * text.figure.bbox.width, text.get_text()

    def fits(s: str) -> bool:
        text.set_text(s)
        return text.get_window_extent(renderer).x1 <= limit

    if fits(full):
        return
    lo, hi = 0, len(full)  # full[:lo] + "…" fits, full[:hi] + "…" does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(full[:mid].rstrip() + "…") else (lo, mid)
    text.set_text(full[:lo].rstrip() + "…")


@contextmanager
def _style():
    import matplotlib

    with matplotlib.rc_context(RC):
        yield


def _figure(size, dpi, box):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    left, bottom, right, top = box
    ax = fig.add_axes((left, bottom, right - left, top - bottom))
    return fig, ax
