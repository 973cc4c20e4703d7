"""The axes of the figures: their ranges, the frame drawn on them and where each point sits.

`board_limits` zooms on what the board is about: the score range of the eligible points (and
the ResNet18 reference), the accuracy band from the threshold to the best eligible accuracy (at
least MIN_Y_SPAN points, with a margin). `team_limits` does the same from one team's own
attempts and the threshold (not its attempts far below those). A point outside the range is not
dropped and does not stretch the axes: it is drawn as an edge marker at the border it lies beyond
(a triangle pointing out of the plot: < left, > right, v below, ^ above; the score decides in a
corner), "×N" beside a spot where several are stacked. Ranges are (xmin, xmax, ymin, ymax)
in score and accuracy (%).
"""

from __future__ import annotations

import math

from ..record import percent
from .pages import run_href
from .ranking import Board, Entry
from .style import (
    COUNT_SIZE,
    COUNT_STEPS,
    EDGE_INSET,
    FLOOR_BELOW_THRESHOLD,
    MIN_X_DECADES,
    MIN_Y_SPAN,
    REFERENCE,
    STACK_R,
    TEAM_SPREAD,
    THRESHOLD,
    X_PAD_DECADES,
    X_PAD_SHARE,
    Y_PAD,
    Y_PAD_SHARE,
)

MARKERS = {"": "o", "left": "<", "right": ">", "below": "v", "above": "^"}


def board_limits(board: Board, points: list[Entry]) -> tuple[float, float, float, float]:
    """The leaderboard's range: zoomed on the eligible points; without one, every point down to
    FLOOR_BELOW_THRESHOLD under the threshold."""
    thr = 100 * board.rules.accuracy_threshold
    ok = [e for e in points if e.record.eligible]
    if not ok:
        return _x_range(points, board.reference) + _y_wide(points, thr)
    return _x_range(ok, board.reference) + _y_band([100 * e.accuracy for e in ok] + [thr])


def team_limits(board: Board, mine: list[Entry], everyone: list[Entry]) -> tuple[float, float, float, float]:
    """A team's slide: the scores of the eligible points and of the team's own, the accuracies of
    the team's own attempts and the threshold (never the floor for a team with nothing eligible)."""
    thr = 100 * board.rules.accuracy_threshold
    field = [e for e in everyone if e.record.eligible] + mine
    own = [100 * e.accuracy for e in mine]
    top = min(max(own, default=thr), thr)
    ys = [y for y in own if y >= top - TEAM_SPREAD] + [thr]  # far below the team's best: edge markers
    return _x_range(field or everyone, board.reference) + _y_band(ys)


def draw_frame(ax, board: Board, limits) -> None:
    """Scales, grid, ticks, axis labels, the threshold and the reference lines."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    xmin, xmax, ymin, ymax = limits
    ax.set_xscale("log")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{round(v, 2):g}%"))
    ax.grid(True, which="major", color="#e3e3e3", lw=1.2, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("score (log scale)   ←  smaller, better")
    ax.set_ylabel("test accuracy")
    ax.axhline(100 * board.rules.accuracy_threshold, color=THRESHOLD, lw=2.5, ls=(0, (6, 4)), zorder=1)
    if xmin < board.reference < xmax:
        ax.axvline(board.reference, color=REFERENCE, lw=2.2, ls=(0, (2, 3)), zorder=1)


def fixed_texts(ax, board: Board, limits) -> list:
    """The threshold's caption (an obstacle of the labels; the reference's is in the legend)."""
    thr = 100 * board.rules.accuracy_threshold
    span = limits[3] - limits[2]
    return [ax.text(limits[1] / 1.03, thr - 0.004 * span, f"{percent(board.rules.accuracy_threshold)} threshold",
                    ha="right", va="top", color=THRESHOLD, fontsize=18, fontweight="bold", zorder=2.5,
                    bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 2})]


def side(e: Entry, limits) -> str:
    """Where a point lies outside the range: "" (inside), "left", "right", "below" or "above"."""
    x, y = e.score, 100 * e.accuracy
    if x < limits[0] or x > limits[1]:
        return "left" if x < limits[0] else "right"
    if y < limits[2] or y > limits[3]:
        return "below" if y < limits[2] else "above"
    return ""


def xy(e: Entry, limits) -> tuple[float, float]:
    """Plot position: a point outside the range sits just inside the border it lies beyond."""
    xmin, xmax, ymin, ymax = limits
    step = (xmax / xmin) ** EDGE_INSET
    inset = EDGE_INSET * (ymax - ymin)
    x = min(max(e.score, xmin * step), xmax / step)
    y = min(max(100 * e.accuracy, ymin + inset), ymax - inset)
    return x, y


def marker(e: Entry, limits) -> str:
    return MARKERS[side(e, limits)]


def scatter(ax, entries: list[Entry], limits, label: str | None = None, links: bool = False, **style) -> None:
    """Points: circles inside the range, edge triangles outside it; with `links`, each point of the
    SVG links to its evaluation's page."""
    for mark in MARKERS.values():
        mine = [e for e in entries if marker(e, limits) == mark]
        if mine or (mark == "o" and label):
            xs, ys = zip(*(xy(e, limits) for e in mine), strict=True) if mine else ((), ())
            points = ax.scatter(xs, ys, marker=mark, label=label if mark == "o" else None, clip_on=False, **style)
            if links:
                points.set_urls([run_href(e) for e in mine])


def edge_counts(ax, entries: list[Entry], limits, color: str) -> list:
    """"×N" beside each spot of the border where N > 1 points are stacked (closer than STACK_R), moved
    further inside while it would overlap another count; returns the texts."""
    import numpy as np

    out = sorted((e for e in entries if side(e, limits)), key=lambda e: (side(e, limits), xy(e, limits)))
    if not out:
        return []
    renderer = ax.figure.canvas.get_renderer()
    spots = ax.transData.transform(np.asarray([xy(e, limits) for e in out]))
    near = STACK_R * ax.figure.dpi / 72.0
    inward = {"left": (1, 0, "left", "center"), "right": (-1, 0, "right", "center"),
              "below": (0, 1, "center", "bottom"), "above": (0, -1, "center", "top")}
    made: list = []
    boxes: list = []
    done: set[int] = set()
    for i, e in enumerate(out):
        if i in done:
            continue
        group = [j for j in range(len(out)) if j not in done and np.hypot(*(spots[j] - spots[i])) < near]
        done.update(group)
        if len(group) < 2:
            continue
        dx, dy, ha, va = inward[side(e, limits)]
        for step in COUNT_STEPS:
            text = ax.annotate(f"×{len(group)}", xy(e, limits), xytext=(dx * step, dy * step),
                               textcoords="offset points", ha=ha, va=va, fontsize=COUNT_SIZE, color=color,
                               fontweight="bold", zorder=6, annotation_clip=False)
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(b) for b in boxes) or step == COUNT_STEPS[-1]:
                break
            text.remove()
        boxes.append(box)
        made.append(text)
    return made


def outside_legend(ax, entries: list[Entry], limits, **style) -> tuple | None:
    """The legend's entry for the edge markers: (the triangles drawn, "outside the range (N)"), or None."""
    kinds = [m for m in MARKERS.values() if m != "o" and any(marker(e, limits) == m for e in entries)]
    if not kinds:
        return None
    count = sum(bool(side(e, limits)) for e in entries)
    return tuple(ax.scatter([], [], marker=m, **style) for m in kinds), f"outside the range ({count})"


def reference_entry(board: Board, limits) -> tuple | None:
    """The legend's entry for the ResNet18 reference line (a caption in the plot would hide points)."""
    from matplotlib.lines import Line2D

    if not limits[0] < board.reference < limits[1]:
        return None
    return Line2D([], [], color=REFERENCE, lw=2.2, ls=(0, (2, 3))), f"ResNet18 float16: {board.reference:.2f}"


def legend(ax, *extra: tuple | None, **kw):
    """The legend of every labelled artist, then each of `extra` (a handle or a tuple of handles, and
    its label; None: none)."""
    from matplotlib.legend_handler import HandlerTuple

    handles, labels = ax.get_legend_handles_labels()
    for entry in extra:
        if entry is not None:
            handles.append(entry[0])
            labels.append(entry[1])
    return ax.legend(handles, labels, handler_map={tuple: HandlerTuple(ndivide=None, pad=0.1)}, **kw)


# -- helpers ----------------------------------------------------------------------------------------------

def _x_range(points: list[Entry], reference: float) -> tuple[float, float]:
    xs = [e.score for e in points] + [reference]
    lo, hi = min(xs), max(xs)
    if math.log10(hi / lo) < MIN_X_DECADES:  # at least MIN_X_DECADES, around the points
        mid, half = math.sqrt(lo * hi), 10 ** (MIN_X_DECADES / 2)
        lo, hi = min(lo, mid / half), max(hi, mid * half)
    pad = 10 ** (X_PAD_SHARE * math.log10(hi / lo) + X_PAD_DECADES)
    return lo / pad, hi * pad


def _y_band(ys: list[float]) -> tuple[float, float]:
    """From the lowest to the highest of `ys` with a margin, at least MIN_Y_SPAN points."""
    lo, hi = min(ys), max(ys)
    pad = max(Y_PAD, Y_PAD_SHARE * (hi - lo))
    lo, hi = lo - pad, hi + pad
    if hi - lo < MIN_Y_SPAN:
        grow = (MIN_Y_SPAN - (hi - lo)) / 2
        lo, hi = lo - grow, hi + grow
    if hi > 100.0:
        lo, hi = lo - (hi - 100.0), 100.0
    return max(lo, 0.0), hi


def _y_wide(points: list[Entry], thr: float) -> tuple[float, float]:
    """Without an eligible point: every point down to FLOOR_BELOW_THRESHOLD under the threshold."""
    floor = thr - FLOOR_BELOW_THRESHOLD
    ys = [100 * e.accuracy for e in points] + [thr]
    ymin, ymax = min(max(min(ys), floor), thr - 4.0), min(max(max(ys), thr + 4.0), 100.0)
    pad = max(1.0, 0.12 * (ymax - ymin))
    return max(ymin - pad, floor - 1.0, 0.0), min(ymax + pad, 101.0)
