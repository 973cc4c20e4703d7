"""Labels of the figures' points: ties merged into one label, each label placed next to its point.

`merge_ties` groups the labelled points that share a spot (the same score and accuracy, or
markers closer than `TIE_R`) so that they get ONE label listing all of them (`tie_text`).
`place_labels` is a small deterministic routine: candidate boxes on growing rings around the
point, at most `LABEL_REACH` away, nearest first; the first that overlaps no label, no fixed
text and no point wins, else the one with the least overlap. A label is never drawn far from
its point. Distances are in display units (pixels), sizes in points (style.py).
"""

from __future__ import annotations

from .style import DOT_R, LABEL_LINE_CHARS, LABEL_LINES, LABEL_REACH, LABEL_SIZE, MARK_R, TIE_R

RINGS = (12, 18, 26, 36, 48, 62, 78, 96, 120)  # pt: radii of the candidate rings, nearest first (<= LABEL_REACH)
ANGLES = (0, 45, -45, 90, -90, 135, -135, 180, 22.5, -22.5, 67.5, -67.5, 112.5, -112.5, 157.5, -157.5)  # degrees


def merge_ties(ax, anchors) -> list[list[int]]:
    """Groups of the indices of `anchors` (data coordinates) whose markers share a spot: centres
    closer than TIE_R points on the canvas, chained. Each group keeps the order of `anchors`, and the
    groups are in the order of their first member."""
    import numpy as np

    if not len(anchors):
        return []
    xy = ax.transData.transform(np.asarray(anchors, dtype=float).reshape(-1, 2))
    near = TIE_R * ax.figure.dpi / 72.0
    parent = list(range(len(xy)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(xy)):
        close = np.flatnonzero(np.hypot(*(xy[i + 1:] - xy[i]).T) < near) + i + 1
        for j in close:
            a, b = root(i), root(int(j))
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(xy)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def tie_text(names: list[str], line: int = LABEL_LINE_CHARS, lines: int = LABEL_LINES) -> str:
    """One label for several points: "a, b, c" wrapped at `line` characters on at most `lines` lines;
    longer: "N teams: a, b, …" within those lines."""
    if len(names) == 1:
        return names[0]
    text = _wrap(names, line)
    if len(text) <= lines:
        return "\n".join(text)
    head = f"{len(names)} teams:"
    for shown in range(len(names) - 1, 0, -1):
        text = _wrap([head, *(n + "," for n in names[:shown]), "…"], line, sep=" ")
        if len(text) <= lines:
            return "\n".join(text)
    return f"{head} {names[0]}, …"


def place_labels(ax, anchors, texts, obstacles=(), points=(), size: float = LABEL_SIZE, color: str = "black",
                 weight: str = "bold", gid: str = "team-label") -> list:
    """Label each anchor (data coordinates) with its text so that no two labels overlap.

    Greedy and deterministic, in the given order: candidate boxes around the anchor on growing
    rings (RINGS, 16 directions, right first), none farther than LABEL_REACH. The first one inside
    the axes that overlaps no placed label, no obstacle (artists with a window extent), no anchor's
    marker and no point (those come first: a label never hides a point while another place is
    free), and lies nearer its own anchor than any other, wins; failing that, the one with the
    fewest such faults. Labels off their marker get a leader line. Returns the annotations.
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
        every = _candidates(spots[k], w, h, px)
        inside = (every[:, 0] >= frame.x0 + 2) & (every[:, 2] <= frame.x1 - 2) & (every[:, 1] >= frame.y0 + 2) \
            & (every[:, 3] <= frame.y1 - 2)
        cands = every[inside] if inside.any() else every
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

def _wrap(words: list[str], width: int, sep: str = ", ") -> list[str]:
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + len(sep) + len(word) <= width:
            lines[-1] += sep + word
        else:
            if lines and sep == ", ":
                lines[-1] += ","
            lines.append(word)
    return lines


def _candidates(xy, w: float, h: float, px: float):
    """Boxes (x0, y0, x1, y1) around xy, in order of preference: rings of growing radius, 16 directions
    each, right first. Each box touches the ring point with its nearest side or corner, so that no box
    lies farther than the largest ring (LABEL_REACH) from xy."""
    import numpy as np

    angles = np.radians(ANGLES)
    radii = np.array([r for r in RINGS if r <= LABEL_REACH]) * px
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
