"""Figures of the leaderboard: accuracy (%) against score (log scale), sized for a projector.

`save_leaderboard` draws every evaluated submission (eligible filled, not eligible hollow),
the accuracy threshold, the Pareto front of the eligible points, the ResNet18 float16
reference score and each ranked team's best, labelled (then, in grey, the closest attempt of
each team with no eligible submission, when there are at most 30 of them). `save_team` draws one team's
submissions over time for a class presentation (slide-sized PNG and PDF). Labels are
placed by `place_labels`, a small deterministic routine that tries candidate positions
around each point, nearest first, and takes the first that overlaps no label, no fixed
text and no point. matplotlib (Agg canvas) is imported only here, only when drawing.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

from ..record import flagged
from .pages import run_href
from .ranking import Board, Entry

WIDE = (16, 9)  # inches; at 120 dpi 1920 x 1080
WIDE_DPI = 120
SLIDE = (12.8, 7.2)  # a 16:9 slide; at 150 dpi 1920 x 1080
SLIDE_DPI = 150
ELIGIBLE, NOT_ELIGIBLE, FRONT, THRESHOLD, REFERENCE = "#1f5fa8", "#8a8f96", "#e07b00", "#c62828", "#3d3d3d"
FLOOR_BELOW_THRESHOLD = 25.0  # accuracy axis starts at most this many points under the threshold
LABEL_SIZE = 17
ATTEMPT_SIZE = 15  # labels of unranked teams' closest attempts
ATTEMPT_TEXT = "#50555c"
MAX_ATTEMPT_LABELS = 30  # more unranked teams than this: their points stay unlabelled
MARK_R, DOT_R = 10.5, 6.0  # points: half-size of a best's marker, of any other point
_RC = {"font.size": 20, "axes.labelsize": 24, "axes.titlesize": 26, "xtick.labelsize": 20, "ytick.labelsize": 20,
       "legend.fontsize": 18, "svg.fonttype": "path", "pdf.fonttype": 42, "svg.hashsalt": "leaderboard",
       "font.family": "DejaVu Sans"}


def save_leaderboard(board: Board, png: str | Path, svg: str | Path) -> tuple[Path, Path]:
    """Draw the leaderboard plot and save it as PNG (1920 x 1080) and SVG."""
    with _style():
        fig = leaderboard_figure(board)
        fig.savefig(png, dpi=WIDE_DPI, format="png")
        fig.savefig(svg, format="svg", metadata={"Date": None})
    return Path(png), Path(svg)


def save_team(board: Board, team: str, out: str | Path) -> tuple[Path, Path]:
    """Draw `team`'s figure and save it as `out` with the suffixes .png and .pdf (slide-sized)."""
    base = Path(out)
    if base.suffix.lower() in (".png", ".pdf"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = base.with_name(base.name + ".png"), base.with_name(base.name + ".pdf")
    with _style():
        fig = team_figure(board, team)
        fig.savefig(png, dpi=SLIDE_DPI)
        fig.savefig(pdf, metadata={"CreationDate": None})
    return png, pdf


def leaderboard_figure(board: Board):
    """The leaderboard plot as a matplotlib Figure (Agg canvas)."""
    fig, ax = _figure(WIDE, WIDE_DPI, (0.075, 0.115, 0.985, 0.83))
    points = [e for e in board.collection.entries if e.plottable]
    limits = _frame(ax, board, points)
    best = {row.best.path for row in board.ranked}
    ok = [e for e in points if e.record.eligible]
    no = [e for e in points if not e.record.eligible]
    _scatter(ax, no, limits, links=True, s=110, facecolors="none", edgecolors=NOT_ELIGIBLE, linewidths=2.2, zorder=3,
             label=f"not eligible ({len(no)})")
    _scatter(ax, [e for e in ok if e.path not in best], limits, links=True, s=110, color=ELIGIBLE, alpha=0.8,
             edgecolors="white", linewidths=0.8, zorder=4, label=f"eligible ({len(ok)})")
    caught = [e for e in no if flagged(e.record)]
    if caught:  # pass or flag only: the checks' figures stay on the evaluation's page
        xs, ys = zip(*(_xy(e, limits) for e in caught), strict=True)
        ax.scatter(xs, ys, marker="x", s=70, color=NOT_ELIGIBLE, linewidths=2.2, zorder=3,
                   label=f"check failed ({len(caught)})")
    front = pareto_front(ok)
    if front:
        xs, ys = [e.record.score.total for e in front], [100 * e.record.accuracy for e in front]
        ax.plot(xs + [limits[1]], ys + [ys[-1]], drawstyle="steps-post", color=FRONT, lw=3.5, zorder=2,
                solid_capstyle="butt", label="Pareto front")
    labelled = [row for row in board.ranked if row.best.plottable]
    bests = [row.best for row in labelled]
    _scatter(ax, bests, limits, links=True, s=300, color=ELIGIBLE, edgecolors="black", linewidths=2.2, zorder=5,
             label="team's best (labelled)")
    low = sum(_marker(e, limits) == "v" for e in points)
    if low:
        ax.scatter([], [], marker="v", s=110, facecolors="none", edgecolors=NOT_ELIGIBLE, linewidths=2.2,
                   label=f"below {limits[2]:.0f} % ({low})")
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
    legend = ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=6, frameon=False, borderaxespad=0.3,
                       handletextpad=0.4, columnspacing=1.2)
    fixed = _fixed_texts(ax, board, limits) + [legend]
    labels = [f"{row.rank}. {row.team}" for row in labelled]
    anchors = [_xy(e, limits) for e in bests]
    dots = [_xy(e, limits) for e in points]
    made = place_labels(ax, anchors, labels, obstacles=fixed, points=dots)
    tries = [row for row in board.unranked if row.closest is not None and row.closest.plottable]
    if len(tries) <= MAX_ATTEMPT_LABELS:  # unranked teams' closest attempts, in grey, after the ranked ones
        place_labels(ax, [_xy(row.closest, limits) for row in tries], [row.team for row in tries],
                     obstacles=fixed + made, points=dots, size=ATTEMPT_SIZE, color=ATTEMPT_TEXT, weight="normal",
                     gid="attempt-label")
    return fig


def team_figure(board: Board, team: str):
    """One team's submissions over time: colour by date, path from the first to the best, field in grey."""
    import matplotlib.dates as mdates
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap, Normalize

    fig, ax = _figure(SLIDE, SLIDE_DPI, (0.105, 0.125, 0.86, 0.80))
    everyone = [e for e in board.collection.entries if e.plottable]
    limits = _frame(ax, board, everyone)  # the same axes for every team's slide
    mine = board.team_entries(team)
    shown = [e for e in mine if e.plottable]
    row = next((r for r in board.ranked + board.unranked if r.team == team), None)
    others = [e for e in everyone if e.record.team != team]
    _scatter(ax, others, limits, s=45, color="#c9cdd2", zorder=2, label="other teams")
    best = row.best if row is not None and row.best is not None else None
    target = best or (shown[-1] if shown else None)
    if target is not None:
        path = [e for e in shown if e.time <= target.time]
        xy = [_xy(e, limits) for e in path]
        for (x0, y0), (x1, y1) in zip(xy, xy[1:], strict=False):
            ax.annotate("", (x1, y1), (x0, y0), zorder=3,
                        arrowprops={"arrowstyle": "-|>", "color": "#555", "lw": 2, "mutation_scale": 22,
                                    "shrinkA": 9, "shrinkB": 9})
    if shown:
        t = [mdates.date2num(e.time) for e in shown]
        norm = Normalize(min(t), max(t) if max(t) > min(t) else min(t) + 1)
        cmap = ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.82, 256)))  # no pale yellow on white
        for e, tt in zip(shown, t, strict=True):
            x, y = _xy(e, limits)
            colour = cmap(norm(tt))
            style = {"color": colour} if e.record.eligible else {"facecolors": "white", "edgecolors": colour}
            if e is best:
                style["edgecolors"] = "black"
            ax.scatter([x], [y], s=260 if e is best else 150, zorder=5, linewidths=3, marker=_marker(e, limits),
                       **style)
        bar = fig.colorbar(_mappable(cmap, norm), ax=ax, pad=0.015, fraction=0.035)
        ticks = sorted(set(np.linspace(norm.vmin, norm.vmax, min(len(shown), 5)).tolist()))
        fmt = "%b %d" if norm.vmax - norm.vmin >= 4 else "%b %d %H:%M"
        bar.set_ticks(ticks, labels=[mdates.num2date(v).strftime(fmt) for v in ticks])
        bar.ax.tick_params(labelsize=15)
        bar.set_label("submitted", fontsize=18)
        marks = _team_marks(shown, best)
        place_labels(ax, [_xy(e, limits) for e, _ in marks], [m for _, m in marks],
                     obstacles=_fixed_texts(ax, board, limits), points=[_xy(e, limits) for e in everyone],
                     size=16)  # the other teams' grey points too: the slide shows the field
    else:
        ax.text(0.5, 0.5, "no scored submission", transform=ax.transAxes, ha="center", va="center",
                fontsize=28, color="#888")
    ax.scatter([], [], s=150, color="#2a788e", label="eligible")
    ax.scatter([], [], s=150, facecolors="white", edgecolors="#2a788e", linewidths=3, label="not eligible")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False, borderaxespad=0.3, fontsize=17)
    standing = (f"rank {row.rank} of {len(board.ranked)}, best score {best.record.score.total:.4f} at "
                f"{best.record.accuracy:.2%}" if best else "no eligible submission yet")
    fig.suptitle(team, x=0.105, y=0.985, ha="left", fontsize=30, fontweight="bold", parse_math=False)
    unscored = f" ({len(mine) - len(shown)} without a score)" if len(shown) < len(mine) else ""
    fig.text(0.105, 0.905, f"{len(mine)} submission{'s' if len(mine) != 1 else ''}{unscored}; {standing}",
             fontsize=19, color="#444", parse_math=False)
    return fig


def pareto_front(entries: list[Entry]) -> list[Entry]:
    """The points no other beats on both score (lower) and accuracy (higher), by increasing score."""
    front, top = [], -math.inf
    for e in sorted(entries, key=lambda e: (e.record.score.total, -e.record.accuracy, e.time)):
        if e.record.accuracy > top:
            front.append(e)
            top = e.record.accuracy
    return front


def place_labels(ax, anchors, texts, obstacles=(), points=(), size: float = LABEL_SIZE, color: str = "black",
                 weight: str = "bold", gid: str = "team-label") -> list:
    """Label each anchor (data coordinates) with its text so that no two labels overlap.

    Greedy and deterministic, in the given order: candidate boxes around the anchor on
    growing rings (16 directions, right first). The first one inside the axes that overlaps
    no placed label, no obstacle (artists with a window extent), no anchor's marker and no
    point (those come first: a label never hides a point while another place is free), and
    lies nearer its own anchor than any other, wins; failing that, the one with the fewest
    such faults. Labels off their marker get a leader line. Returns the annotations.
    """
    import numpy as np

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    dots = ax.transData.transform(np.asarray(points, dtype=float).reshape(-1, 2))
    spots = ax.transData.transform(np.asarray(anchors, dtype=float).reshape(-1, 2))
    m = MARK_R * px
    blocks = [_box(a.get_window_extent(renderer)) for a in obstacles]
    blocks += [(x - m, y - m, x + m, y + m) for x, y in spots]  # every labelled marker
    dot_r, pad = DOT_R * px, 0.25 * size * px
    made = []
    for k, ((x, y), text) in enumerate(zip(anchors, texts, strict=True)):
        probe = ax.text(0, 0, text, fontsize=size, fontweight=weight, parse_math=False)
        ext = probe.get_window_extent(renderer)
        probe.remove()
        w, h = ext.width + 2 * pad, ext.height + 2 * pad
        cands = _candidates(spots[k], w, h, px)
        cands = cands[(cands[:, 0] >= frame.x0 + 2) & (cands[:, 2] <= frame.x1 - 2)
                      & (cands[:, 1] >= frame.y0 + 2) & (cands[:, 3] <= frame.y1 - 2)]
        if not len(cands):
            cands = _candidates(spots[k], w, h, px)[:1]
        clash = _overlap(cands, np.asarray(blocks, dtype=float).reshape(-1, 4))
        near = _overlap(cands, np.hstack([dots - dot_r, dots + dot_r])) if len(dots) else np.zeros(len(cands))
        own = _distance(cands, spots[k:k + 1])[:, 0]
        others = _distance(cands, np.delete(spots, k, axis=0))
        ambiguous = (others < 2 * np.maximum(own, m)[:, None]).any(axis=1)
        order = np.lexsort((np.arange(len(cands)), near, clash, ambiguous, near > 0, clash > 0))
        choice = cands[order[0]]
        blocks.append(tuple(choice))
        far = own[order[0]] > (MARK_R + 3) * px
        arrow = {"arrowstyle": "-", "color": "#555", "lw": 1.6, "shrinkA": 0, "shrinkB": MARK_R - 2} if far else None
        made.append(ax.annotate(text, (x, y), xytext=((choice[0] + pad - spots[k][0]) / px,
                                                      (choice[1] + pad - spots[k][1]) / px),
                                textcoords="offset points", ha="left", va="bottom", fontsize=size, color=color,
                                fontweight=weight, zorder=7, gid=gid, arrowprops=arrow, parse_math=False,
                                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#777", "lw": 1,
                                      "alpha": 0.92}))
    return made


# -- helpers ----------------------------------------------------------------------------------------------

@contextmanager
def _style():
    import matplotlib

    with matplotlib.rc_context(_RC):
        yield


def _figure(size, dpi, box):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    left, bottom, right, top = box
    ax = fig.add_axes((left, bottom, right - left, top - bottom))
    return fig, ax


def _frame(ax, board: Board, points: list[Entry]) -> tuple[float, float, float, float]:
    """Axes, scales, grid, ticks; returns (xmin, xmax, ymin, ymax) in score and accuracy %."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    thr = 100 * board.rules.accuracy_threshold
    xs = [e.record.score.total for e in points] + [board.reference]
    ys = [100 * e.record.accuracy for e in points] + [thr]
    lo_x, hi_x = min(xs), max(xs)
    if hi_x / lo_x < 10:  # at least a decade, around the points
        mid = math.sqrt(lo_x * hi_x)
        lo_x, hi_x = min(lo_x, mid / math.sqrt(10)), max(hi_x, mid * math.sqrt(10))
    span = math.log10(hi_x / lo_x)
    xmin, xmax = lo_x / 10 ** (0.06 * span + 0.12), hi_x * 10 ** (0.06 * span + 0.12)
    floor = thr - FLOOR_BELOW_THRESHOLD
    ymin, ymax = min(max(min(ys), floor), thr - 4.0), min(max(max(ys), thr + 4.0), 100.0)
    pad = max(1.0, 0.12 * (ymax - ymin))
    ymin, ymax = max(ymin - pad, floor - 1.0, 0.0), min(ymax + pad, 101.0)
    ax.set_xscale("log")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 5, 10], integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} %"))
    ax.grid(True, which="major", color="#e3e3e3", lw=1.2, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("score (log scale)   ←  smaller, better")
    ax.set_ylabel("test accuracy")
    ax.axhline(thr, color=THRESHOLD, lw=2.5, ls=(0, (6, 4)), zorder=1)
    ax.axvline(board.reference, color=REFERENCE, lw=2.2, ls=(0, (2, 3)), zorder=1)
    return xmin, xmax, ymin, ymax


def _fixed_texts(ax, board: Board, limits) -> list:
    thr = 100 * board.rules.accuracy_threshold
    a = ax.text(limits[1] / 1.03, thr - 0.004 * (limits[3] - limits[2]), f"{thr:g} % threshold", ha="right",
                va="top", color=THRESHOLD, fontsize=18, fontweight="bold", zorder=2.5,
                bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 2})
    b = ax.text(board.reference / 1.03, limits[2] + 0.015 * (limits[3] - limits[2]),
                f"ResNet18 float16\nscore {board.reference:.2f}", ha="right", va="bottom", color=REFERENCE,
                fontsize=16, zorder=2.5, bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 2})
    return [a, b]


def _xy(e: Entry, limits) -> tuple[float, float]:
    """Plot position; accuracy below the axis floor sits on the floor (drawn as a down triangle)."""
    return e.record.score.total, max(100 * e.record.accuracy, limits[2] + 0.012 * (limits[3] - limits[2]))


def _marker(e: Entry, limits) -> str:
    return "v" if 100 * e.record.accuracy < limits[2] else "o"


def _scatter(ax, entries: list[Entry], limits, label: str | None = None, links: bool = False, **style) -> None:
    """Points, circles above the axis floor and down triangles for those below it; with `links`, each
    point of the SVG links to its evaluation's page."""
    for marker in ("o", "v"):
        mine = [e for e in entries if _marker(e, limits) == marker]
        if mine or (marker == "o" and label):
            xs, ys = zip(*(_xy(e, limits) for e in mine), strict=True) if mine else ((), ())
            points = ax.scatter(xs, ys, marker=marker, label=label if marker == "o" else None, **style)
            if links:
                points.set_urls([run_href(e) for e in mine])


def _team_marks(shown: list[Entry], best: Entry | None) -> list[tuple[Entry, str]]:
    marks = {id(shown[0]): (shown[0], f"first: {shown[0].record.name} ({shown[0].time:%b %d})")}
    if best is not None:
        marks[id(best)] = (best, f"best: {best.record.name}, {best.record.score.total:.3f}")
    if shown[-1] is not best and len(shown) > 1:
        marks[id(shown[-1])] = (shown[-1], f"latest: {shown[-1].record.name} ({shown[-1].time:%b %d})")
    if best is not None and best is shown[0]:
        marks[id(best)] = (best, f"first and best: {best.record.name}, {best.record.score.total:.3f}")
    return list(marks.values())


def _mappable(cmap, norm):
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=cmap)


def _candidates(xy, w: float, h: float, px: float):
    """Boxes (x0, y0, x1, y1) around xy, in order of preference: rings of growing radius, 16 directions
    each, right first. Each box touches the ring point with its nearest side or corner."""
    import numpy as np

    angles = np.radians([0, 45, -45, 90, -90, 135, -135, 180, 22.5, -22.5, 67.5, -67.5, 112.5, -112.5,
                         157.5, -157.5])
    radii = np.array([12, 18, 26, 36, 48, 62, 78, 96, 116, 138, 162, 188, 216, 246, 280, 320, 370, 430, 500]) * px
    c, s = np.tile(np.cos(angles), len(radii)), np.tile(np.sin(angles), len(radii))
    r = np.repeat(radii, len(angles))
    x0 = xy[0] + r * c - np.where(c > 0.3, 0.0, np.where(c < -0.3, w, w / 2))
    y0 = xy[1] + r * s - np.where(s > 0.3, 0.0, np.where(s < -0.3, h, h / 2))
    return np.stack([x0, y0, x0 + w, y0 + h], axis=1)


def _overlap(boxes, others):
    """Summed overlap area of each of `boxes` (n, 4) with all of `others` (m, 4)."""
    import numpy as np

    if not len(others):
        return np.zeros(len(boxes))
    w = np.minimum(boxes[:, None, 2], others[None, :, 2]) - np.maximum(boxes[:, None, 0], others[None, :, 0])
    h = np.minimum(boxes[:, None, 3], others[None, :, 3]) - np.maximum(boxes[:, None, 1], others[None, :, 1])
    return (np.clip(w, 0, None) * np.clip(h, 0, None)).sum(axis=1)


def _distance(boxes, points):
    """Distance (n, m) from each box to each point (0 inside)."""
    import numpy as np

    dx = np.maximum(np.maximum(boxes[:, None, 0] - points[None, :, 0], points[None, :, 0] - boxes[:, None, 2]), 0)
    dy = np.maximum(np.maximum(boxes[:, None, 1] - points[None, :, 1], points[None, :, 1] - boxes[:, None, 3]), 0)
    return np.hypot(dx, dy)


def _box(bbox) -> tuple[float, float, float, float]:
    return bbox.x0, bbox.y0, bbox.x1, bbox.y1
