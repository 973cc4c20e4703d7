"""The board as a class sees it projected: the trial's mix of records (benchmarks/class_board.py).

Most eligible teams between 90.0 and 90.4 %, five teams tied on one point, two junk attempts at
score 0.01, teams with nothing eligible (all errors, long multi-line errors naming the
instructor's absolute paths). Pinned here: the plot's ranges (the junk points are edge markers
and do not stretch the axes), one label per tied spot listing its teams, every label near its
point, reasons without absolute paths or empty first lines, the team slide's range for a team
with nothing eligible, the team page's slide, the board's notes and the threshold's digits.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from harness.board import axes, plots, ranking, render, tables
from harness.board.labels import tie_text
from harness.board.pages import run_page, team_href, team_page, team_slide_href
from harness.board.style import LABEL_REACH, MIN_Y_SPAN
from harness.text import first_line, relative
from tests.test_leaderboard import RULES, make, write_all

_spec = importlib.util.spec_from_file_location("class_board", Path(__file__).parents[1] / "benchmarks" /
                                               "class_board.py")
class_board = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(class_board)

ABSOLUTE = class_board.ROOT  # the instructor's folder: never shown


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> ranking.Board:
    return ranking.build(class_board.write_class(tmp_path_factory.mktemp("class") / "results"), RULES)


@pytest.fixture(scope="module")
def figure(board):
    with plots._style():
        fig = plots.leaderboard_figure(board)
        fig.canvas.draw()
        yield fig


def _labels(fig, gids=("team-label", "attempt-label")) -> list:
    return [t for t in fig.axes[0].texts if t.get_gid() in gids]


def _markers(ax, mark: str) -> list[tuple[float, float]]:
    """Data positions of the points drawn with `mark` ("<", "v", ...)."""
    from matplotlib.markers import MarkerStyle

    style = MarkerStyle(mark)
    want = style.get_path().transformed(style.get_transform()).vertices
    out = []
    for c in ax.collections:
        paths = c.get_paths()
        same = len(paths) == 1 and paths[0].vertices.shape == want.shape and np.allclose(paths[0].vertices, want)
        if same and len(c.get_offsets()):
            out += [tuple(p) for p in np.asarray(c.get_offsets())]
    return out


# -- the main plot ----------------------------------------------------------------------------------------

def test_the_score_axis_spans_the_eligible_points_and_junk_is_an_edge_marker(board, figure):
    ax = figure.axes[0]
    ok = [e.record.score.total for e in board.collection.entries if e.plottable and e.record.eligible]
    junk = [e for e in board.collection.entries if e.plottable and e.record.score.total == 0.01]
    assert len(junk) == 2
    xmin, xmax = ax.get_xlim()
    assert 0.01 < xmin < min(ok) and max(ok) < xmax  # the junk does not stretch the axis
    assert math.log10(min(ok) / xmin) < 0.3  # a margin, not a stretch
    left = _markers(ax, "<")
    limits = (*ax.get_xlim(), *ax.get_ylim())
    for e in junk:
        assert axes.side(e, limits) == "left" and axes.xy(e, limits) in left  # at the border, inside
        assert xmin < axes.xy(e, limits)[0] < xmin * 1.2
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    outside = sum(bool(axes.side(e, limits)) for e in board.collection.entries if e.plottable)
    assert f"outside the range ({outside})" in legend


def test_the_accuracy_axis_zooms_on_the_eligible_band(board, figure):
    ax = figure.axes[0]
    ymin, ymax = ax.get_ylim()
    ok = [100 * e.record.accuracy for e in board.collection.entries if e.plottable and e.record.eligible]
    assert 90.0 <= min(ok) and max(ok) <= 90.4
    assert ymin < 90.0 < max(ok) < ymax  # the threshold and every eligible point inside
    assert MIN_Y_SPAN <= ymax - ymin <= 2.0  # zoomed: not the 25 points of the old floor
    below = [e for e in board.collection.entries if e.plottable and 100 * e.record.accuracy < ymin]
    assert below and set(_markers(ax, "v")) >= {axes.xy(e, (*ax.get_xlim(), ymin, ymax)) for e in below
                                                 if axes.side(e, (*ax.get_xlim(), ymin, ymax)) == "below"}


def test_without_an_eligible_point_the_axes_hold_every_point(tmp_path):
    write_all(tmp_path, [make("a", accuracy=0.86, total=0.3), make("b", accuracy=0.70, total=0.05, minutes=1),
                         make("c", accuracy=0.30, total=0.01, minutes=2)])
    board = ranking.build(tmp_path, RULES)
    with plots._style():
        fig = plots.leaderboard_figure(board)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] < 0.01 and ax.get_xlim()[1] > 0.3
    assert ax.get_ylim()[0] < 70 < 86 < 90 < ax.get_ylim()[1]  # down to the floor, 25 points under 90 %
    assert len(_markers(ax, "v")) == 1  # 30 %: under the floor


def test_tied_teams_share_one_label_that_names_them_all(board, figure):
    texts = [t.get_text() for t in _labels(figure, ("team-label",))]
    tied = [t for t in texts if "copycats" in t]
    assert len(tied) == 1
    assert all(name in tied[0] for name in class_board.TIED_TEAMS)
    assert not [t for t in texts if t is not tied[0] and any(n in t for n in class_board.TIED_TEAMS)]
    ranked = {row.team for row in board.ranked}
    assert all(any(team in t for t in texts) for team in ranked)  # every ranked team named once somewhere


def test_tie_text_wraps_and_abbreviates():
    assert tie_text(["a"]) == "a"
    assert tie_text(["team-a", "team-b", "team-c"]) == "team-a, team-b, team-c"
    five = [f"quant-quokkas-{i}" for i in range(5)]
    assert tie_text(five).replace("\n", " ") == ", ".join(five)  # wrapped, all named
    many = tie_text([f"team-{i:02d}" for i in range(40)], line=36, lines=2)
    assert many.startswith("40 teams: team-00, team-01") and many.endswith("…") and many.count("\n") <= 1


def test_every_label_lies_next_to_its_point_and_none_overlap(figure):
    fig = figure
    renderer = fig.canvas.get_renderer()
    reach = LABEL_REACH * fig.dpi / 72.0
    boxes = []
    for label in _labels(fig):
        box = label.get_bbox_patch().get_window_extent(renderer)
        x, y = fig.axes[0].transData.transform(label.xy)
        gap = math.hypot(max(box.x0 - x, 0, x - box.x1), max(box.y0 - y, 0, y - box.y1))
        assert gap <= reach + 8, (label.get_text(), gap)  # 8 px: the box's rounding pad
        boxes.append(box)
    assert len(boxes) >= 15
    assert not [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


# -- reasons and errors -----------------------------------------------------------------------------------

def test_first_lines_are_informative():
    assert first_line("RuntimeError:\n\n  Error(s) in loading state_dict for Net:\n\tsize mismatch for w") == \
        "RuntimeError: Error(s) in loading state_dict for Net: size mismatch for w"
    assert first_line("Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad") == \
        "ValueError: bad"
    assert first_line("1 validation error for Record\nteam\n  Field required") == \
        "1 validation error for Record: team: Field required"
    assert first_line("plain message\nsecond line") == "plain message"
    assert first_line("\n \n") == ""
    assert len(first_line("x" * 500, 120)) == 120


def test_paths_are_shown_relative_to_the_submission():
    d = "/home/prof/course/subs/team7"
    assert relative(f"{d}/model.py:42 and {d}/weights.pt.", d) == "model.py:42 and weights.pt."
    assert relative("File \"/submission/net/model.py\", line 3", d) == "File \"net/model.py\", line 3"
    assert relative("/data/home/prof/course/subs/team7/model.py", "subs/team7") == "model.py"  # resolved
    assert relative("in /venv/lib/python3.11/site-packages/torch/nn/x.py", d) == "in site-packages/torch/nn/x.py"
    assert relative("/home/prof/private/images.npy missing", d) == "…/images.npy missing"
    assert relative("/dev/shm is full", d) == "/dev/shm is full"
    assert relative("subs/team7/model.py", d) == "subs/team7/model.py"  # already relative


def test_reasons_and_pages_never_show_the_instructors_paths(board):
    reasons = {row.team: row.reason for row in board.unranked}
    long = reasons["the-very-long-team-name-of-group-seven"]
    assert "RuntimeError: Error(s) in loading state_dict" in long and not long.rstrip().endswith(":")
    assert reasons["broken-builders"].startswith("bb-v2: error while running; worker killed")
    assert relative(class_board.IMPORT_ERROR, f"{ABSOLUTE}/broken-builders").startswith("model.py: importing")
    for text in [*reasons.values(), tables.to_markdown(board), tables.to_csv(board),
                 *(run_page(e, board) for e in board.collection.entries)]:
        assert ABSOLUTE not in text and "/submission/" not in text
    seven = [run_page(e, board) for e in board.team_entries("the-very-long-team-name-of-group-seven")]
    assert all("from checkpoint weights.pt," in page and "File &quot;model.py&quot;" in page for page in seven)


# -- the team slide and page ------------------------------------------------------------------------------

def test_a_team_with_nothing_eligible_sees_its_attempts_at_their_accuracies(tmp_path):
    write_all(tmp_path, [make("good", total=0.2, accuracy=0.902), make("good", "g2", total=0.3, accuracy=0.904),
                         make("near", "n1", total=0.3, accuracy=0.85, minutes=1),
                         make("near", "n2", total=0.25, accuracy=0.875, minutes=2),
                         make("near", "n3", total=0.1, accuracy=0.2, minutes=3)])  # junk: far below, an edge
    board = ranking.build(tmp_path, RULES)
    with plots._style():
        fig = plots.team_figure(board, "near")
        fig.canvas.draw()
    ax = fig.axes[0]
    ymin, ymax = ax.get_ylim()
    assert 80 < ymin < 85 and 90 < ymax < 92  # its attempts and the threshold, not the floor
    assert {(0.3, 85.0), (0.25, 87.5)} <= {(round(x, 4), round(y, 4)) for x, y in _markers(ax, "o")}
    assert len(_markers(ax, "v")) == 1
    table = " ".join(t.get_text() for t in fig.axes[1].texts)
    assert "85.00%" in table and "87.50%" in table and "20.00%" in table  # every accuracy readable
    labels = [t.get_text() for t in ax.texts if t.get_gid() == "team-label"]
    assert sorted(labels) == ["1", "2", "3"]  # numbered as in the table


def test_the_team_page_shows_its_slide_and_unchanged_slides_are_not_redrawn(tmp_path):
    results = write_all(tmp_path / "r", [make("alpha", total=0.2), make("beta", total=0.3, minutes=1),
                                         make("gamma", total=None, accuracy=None, status="error", minutes=2,
                                              errors=["RuntimeError:\n boom"])])
    board = ranking.build(results, RULES)
    out = tmp_path / "out"
    render.render(board, out)
    for team in ("alpha", "beta", "gamma"):
        slide = out / team_slide_href(team)
        assert slide.is_file() and slide.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        page = (out / team_href(team)).read_text()
        assert f'<img src="{slide.name}"' in page and f'href="{slide.name}"' in page
    before = {p.name: p.stat().st_mtime_ns for p in (out / "teams").glob("*.png")}
    render.render(ranking.build(results, RULES), out)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "teams").glob("*.png")} == before
    write_all(results, [make("beta", "b2", total=0.1, minutes=3)])  # a new point: every slide shows it
    render.render(ranking.build(results, RULES), out)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "teams").glob("*.png")}
    assert all(after[k] != v for k, v in before.items())
    assert "<img" not in team_page("alpha", board, slides=False)


# -- notes and the threshold ------------------------------------------------------------------------------

def test_notes_and_an_exact_threshold_are_shown_everywhere(tmp_path):
    write_all(tmp_path, [make("a", total=0.3, accuracy=0.91), make("b", total=0.2, accuracy=0.95)])
    board = ranking.build(tmp_path, RULES)
    board.rules = board.rules.model_copy(update={"accuracy_threshold": 0.9025})
    board.notes = ["Teams as their submission.yaml names them: no roster binds them to folders.",
                   "2 records made under other rules are not shown."]
    md = tables.to_markdown(board)
    assert md.index("2 teams ranked") < md.index("> Note: Teams as their submission.yaml") < md.index("| # |")
    assert "accuracy ≥ 90.25%" in md
    page = tables.to_html(board, b'<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    assert page.index('class="summary"') < page.index('<p class="note">Note: Teams as') < page.index("<figure>")
    assert "2 records made under other rules are not shown." in page and "at least 90.25%" in page
    with plots._style():
        fig = plots.leaderboard_figure(board)
    shown = " ".join(t.get_text() for t in [*fig.texts, *fig.axes[0].texts])
    assert "Note: Teams as their submission.yaml" in shown and "other rules are not shown" in shown
    assert "90.25% threshold" in shown
