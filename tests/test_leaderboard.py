"""The leaderboard: ranking rules, robustness of the record folder, rendering, plots and the command line."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import multiprocessing
import random
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from harness import record
from harness.board import ranking, render, tables
from harness.cli import main
from harness.config import load_rules
from harness.record import Check, Compression, Provenance, Record, Score
from harness.score import Reference, score

START = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
RULES = load_rules()


def make(team: str, name: str = "sub", *, accuracy: float | None = 0.92, total: float | None = 0.5,
         minutes: float = 0, status: str = "ok", eligible: bool | None = None, reasons: list[str] | None = None,
         errors: list[str] | None = None, params: int = 1_000_000, macs: int = 50_000_000,
         declared: Compression | None = None, flagged: bool = False, kind: str = "evaluate",
         rules: dict | None = None) -> Record:
    """A record as the evaluation writes it, under the bundled rules with `rules` changed; `total` is
    split 40/60 into the two terms."""
    if eligible is None:
        eligible = status == "ok" and accuracy is not None and accuracy >= RULES.accuracy_threshold
    if reasons is None:
        reasons = [] if eligible else ([f"accuracy {accuracy:.2%} below 90%"] if status == "ok"
                                       else ["invalid submission" if status == "invalid" else "error while running"])
    checks = [Check(name="unseen", ran=True, images=1000, accuracy=accuracy, reference=accuracy, gap=0.0, margin=0.02,
                    tolerance=0.05, passed=True),
              Check(name="flip", ran=True, images=500, accuracy=accuracy - (0.2 if flagged else 0.0),
                    reference=accuracy, gap=0.2 if flagged else 0.0, margin=0.05, tolerance=0.07,
                    passed=not flagged)] if accuracy is not None else []
    return Record(kind=kind, team=team, name=name, directory=f"submissions/{name}", status=status,
                  errors=errors or [], accuracy=accuracy, correct=None if accuracy is None else round(accuracy * 1e4),
                  total=10_000, checks=checks, params=params, macs=macs, declared=declared or Compression(),
                  score=None if total is None else Score(params_term=0.4 * total, ops_term=0.6 * total, total=total),
                  eligible=eligible, reasons=reasons,
                  provenance=Provenance(harness_version="0.1.0", scoring_version="1",
                                        created_at=(START + timedelta(minutes=minutes)).isoformat(
                                            timespec="milliseconds"),
                                        rules={**RULES.model_dump(include=set(ranking.RULES_OF_A_BOARD)),
                                               **(rules or {})}))


def write_all(folder: Path, records: list[Record]) -> Path:
    for r in records:
        record.write(r, folder)
    return folder


def generate(folder: Path, teams: int = 12, submissions: int = 60, seed: int = 0) -> Path:
    """Realistic records: scores 0.02..3 from real counts and compression, accuracies 80..95 %."""
    rng = random.Random(seed)
    names = ["tiny-tigers", "prune-juice", "bit-shifters", "quant-quokkas", "low-rankers", "sparse-squad",
             "the-distillers", "mobile-moles", "half-precision", "lottery-tickets", "depthwise-dragons",
             "resnet-renegades", "kernel-panic", "zero-heroes", "grad-students", "fp4-fanatics"]
    team_names = [names[i % len(names)] + ("" if i < len(names) else f"-{i}") for i in range(teams)]
    skill = {t: rng.uniform(0, 1) for t in team_names}
    for i in range(submissions):
        team = team_names[i % teams] if i < teams else rng.choice(team_names)
        params = int(10 ** rng.uniform(5.3, 7.05))
        macs = int(params * 10 ** rng.uniform(1.2, 1.75))
        ps, pu = rng.choice([0, 0, 0.1, 0.3]), rng.choice([0, 0.2, 0.5, 0.7])
        pu = min(pu, 0.9 - ps)
        qw = rng.choice([4, 8, 8, 16, 16, 32])
        qa = max(qw, rng.choice([8, 16, 32]))
        declared = Compression(structured_pruning=ps, unstructured_pruning=pu, weight_bits=qw, activation_bits=qa)
        t = score(params, macs, declared, 1.0, Reference.of(RULES))
        acc = min(0.955, max(0.80, rng.gauss(0.895 + 0.03 * skill[team] + 0.01 * math.log10(t.total), 0.025)))
        verified = rng.random() > 0.1
        eligible = acc >= 0.9 and verified
        reasons = ([f"accuracy {acc:.2%} below 90%"] if acc < 0.9 else []) + ([] if verified else
                                                                               ["claims not verified"])
        r = make(team, f"{team}-v{i}", accuracy=round(acc, 4), total=t.total, minutes=i * 97 + rng.uniform(0, 60),
                 eligible=eligible, reasons=reasons, params=params, macs=macs, declared=declared)
        r.score = t
        record.write(r, folder)
    return folder


def board_of(folder: Path) -> ranking.Board:
    return ranking.build(folder, RULES)


# -- ranking ------------------------------------------------------------------------------------------------

def test_reference_score_is_resnet18_in_float16():
    assert ranking.reference_score(Reference.of(RULES)) == pytest.approx(1.99, abs=0.01)


def test_best_eligible_submission_ranks_each_team(tmp_path):
    write_all(tmp_path, [
        make("alpha", "a1", total=0.5, minutes=0),
        make("alpha", "a2", total=0.2, accuracy=0.85, minutes=10),  # lower score but not eligible
        make("alpha", "a3", total=0.3, minutes=20),
        make("alpha", "a4", total=None, accuracy=None, status="invalid", errors=["bad yaml"], minutes=30),
        make("beta", "b1", total=0.1, minutes=5),
    ])
    board = board_of(tmp_path)
    assert [(r.rank, r.team, r.best.record.name) for r in board.ranked] == [(1, "beta", "b1"), (2, "alpha", "a3")]
    alpha = board.ranked[1]
    assert alpha.submissions == 4  # the invalid one counts as a submission
    assert alpha.last == START + timedelta(minutes=30)
    assert board.unranked == []


def test_ties_go_to_higher_accuracy_then_to_the_earlier(tmp_path):
    write_all(tmp_path, [
        make("alpha", "low-acc", total=0.3, accuracy=0.91, minutes=0),
        make("alpha", "high-acc", total=0.3, accuracy=0.93, minutes=10),
        make("beta", "later", total=0.3, accuracy=0.93, minutes=30),
        make("beta", "earlier", total=0.1 + 0.2, accuracy=0.93, minutes=20),  # 0.30000000000000004: a tie
        make("gamma", "same", total=0.3, accuracy=0.93, minutes=5),
    ])
    board = board_of(tmp_path)
    assert [(r.team, r.best.record.name) for r in board.ranked] == [
        ("gamma", "same"), ("alpha", "high-acc"), ("beta", "earlier")]
    assert [r.rank for r in board.ranked] == [1, 2, 3]


def test_teams_without_an_eligible_submission_come_after_with_the_reason(tmp_path):
    write_all(tmp_path, [
        make("zeta", "z1", total=0.05, accuracy=0.86, minutes=0),
        make("zeta", "z2", total=0.04, accuracy=0.88, minutes=1),
        make("Eta", "e1", total=None, accuracy=None, status="invalid", errors=["submission.yaml: unknown key 'x'"]),
        make("theta", "t1", total=0.2, accuracy=0.95, eligible=False, reasons=["claims not verified"]),
        make("iota", "i1", total=0.9, minutes=3),
    ])
    board = board_of(tmp_path)
    assert [r.team for r in board.ranked] == ["iota"]
    assert [r.team for r in board.unranked] == ["Eta", "theta", "zeta"]
    reasons = {r.team: r.reason for r in board.unranked}
    assert reasons["zeta"] == "z2: accuracy 88.00% below 90%"  # the closest attempt
    assert reasons["Eta"] == "e1: invalid submission; submission.yaml: unknown key 'x'"
    assert reasons["theta"] == "t1: claims not verified"
    md = tables.to_markdown(board)
    assert md.index("| 1 | iota |") < md.index("## Not ranked") < md.index("| zeta | 2 |")


def test_csv_has_a_header_and_follows_the_ranking(tmp_path):
    write_all(tmp_path, [make("b", total=0.2, accuracy=0.9123, params=123_456, macs=7_890_123,
                              declared=Compression(structured_pruning=0.1, unstructured_pruning=0.3,
                                                   weight_bits=8, activation_bits=8)),
                         make("a", total=0.4, flagged=True), make("c", total=0.1, accuracy=0.5),
                         make("=cmd", total=0.3)])
    rows = list(csv.DictReader(io.StringIO(tables.to_csv(board_of(tmp_path)))))
    assert [(r["rank"], r["team"]) for r in rows] == [("1", "b"), ("2", "'=cmd"), ("3", "a"), ("", "c")]
    b = rows[0]
    assert (b["accuracy"], b["params"], b["macs"], b["score"]) == ("0.912300", "123456", "7890123", "0.200000")
    assert (b["structured_pruning"], b["unstructured_pruning"], b["weight_bits"], b["activation_bits"]) == (
        "0.1", "0.3", "8", "8")
    assert float(b["params_term"]) + float(b["ops_term"]) == pytest.approx(0.2)
    assert rows[2]["checks"] == "flagged: flip" and rows[0]["checks"] == "passed"  # pass or flag, no figure
    assert rows[3]["reason"].startswith("sub: accuracy 50.00% below 90%") and rows[3]["score"] == ""
    assert b["last_submitted"] == "2025-03-03T09:00:00+00:00"


def test_pareto_front_keeps_only_undominated_eligible_points(tmp_path):
    from harness.board.plots import pareto_front

    write_all(tmp_path, [make("a", "p1", total=0.1, accuracy=0.90), make("a", "p2", total=0.2, accuracy=0.95),
                         make("a", "dominated", total=0.3, accuracy=0.94), make("a", "p3", total=1.0, accuracy=0.96),
                         make("a", "same-score-worse", total=0.1, accuracy=0.905 - 0.01)])
    entries = board_of(tmp_path).collection.entries
    assert [e.record.name for e in pareto_front([e for e in entries if e.record.eligible])] == ["p1", "p2", "p3"]


# -- the record folder --------------------------------------------------------------------------------------

def test_corrupt_records_are_reported_and_skipped(tmp_path, capsys):
    results = write_all(tmp_path / "results", [make("alpha", total=0.3), make("beta", total=0.2),
                                               make("gamma", kind="profile")])
    (results / "garbage.json").write_text("not json at all")
    (results / "truncated.json").write_text(record.read(next(results.glob("*alpha*"))).model_dump_json()[:200])
    (results / "wrong-schema.json").write_text('{"team": "x"}')
    (results / "not-utf8.json").write_bytes(b"\xff\xfe\x00garbage")
    bad_time = make("delta").model_dump()
    bad_time["provenance"]["created_at"] = "yesterday"
    (results / "bad-time.json").write_text(__import__("json").dumps(bad_time))
    (results / "folder.json").mkdir()
    (results / ".tmp-abc.json").write_text("{")  # a write in progress: not a record
    board = board_of(results)
    assert [r.team for r in board.ranked] == ["beta", "alpha"]
    assert "profile" not in {e.record.kind for e in board.collection.entries}  # read, not ranked
    skipped = {s.path.name: s.problem for s in board.collection.skipped}
    assert sorted(skipped) == ["bad-time.json", "folder.json", "garbage.json", "not-utf8.json", "truncated.json",
                               "wrong-schema.json"]
    assert "not an ISO-8601 time" in skipped["bad-time.json"]
    assert "validation error" in skipped["wrong-schema.json"]
    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert "2 teams ranked" in out and "6 unreadable skipped" in out
    assert "garbage.json" in err and "truncated.json" in err
    assert "## Records that could not be read (skipped)" in (tmp_path / "out" / "leaderboard.md").read_text()


def test_rendering_never_changes_the_records(tmp_path):
    results = generate(tmp_path / "results", teams=5, submissions=20)
    before = {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in results.iterdir()}
    render.render(board_of(results), tmp_path / "out")
    after = {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in results.iterdir()}
    assert after == before


def _writer(folder: str, worker: int, count: int, go) -> None:
    go.wait()
    for i in range(count):  # the same team, name and time everywhere: file names collide on purpose
        r = make("crowd", "same-name", total=0.1 + worker + i / 1000)
        record.write(r, folder)


def test_parallel_writers_lose_nothing(tmp_path):
    workers, count = 4, 50
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, count, go)) for w in range(workers)]
    for p in procs:
        p.start()
    go.set()
    seen_skipped = []
    while any(p.is_alive() for p in procs):  # a reader during the writes sees only whole records
        seen_skipped += ranking.collect(tmp_path).skipped
        time.sleep(0.05)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert seen_skipped == []
    c = ranking.collect(tmp_path)
    assert c.skipped == [] and len(c.entries) == workers * count
    totals = sorted(round(e.record.score.total, 6) for e in c.entries)
    assert totals == sorted(round(0.1 + w + i / 1000, 6) for w in range(workers) for i in range(count))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_missing_results_folder_is_an_error_with_a_message(tmp_path, capsys):
    assert main(["leaderboard", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert "results folder" in capsys.readouterr().err


# -- rendering ----------------------------------------------------------------------------------------------

def test_render_writes_every_file(tmp_path):
    results = generate(tmp_path / "results")
    written = render.render(board_of(results), tmp_path / "out")
    assert sorted(written) == sorted(render.FILES)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted([*render.FILES, "runs", "teams"])  # no temporary left
    with Image.open(written["leaderboard.png"]) as im:
        assert im.size[0] >= 1600 and im.size[1] >= 900
    assert written["leaderboard.svg"].read_text().lstrip().startswith("<?xml")
    page = written["index.html"].read_text()
    assert '<svg id="plot"' in page and "<script>" in page
    assert not re.search(r"(src|href)=\"(https?:)?//|url\((?!#)", page)  # nothing fetched: it works offline
    board = board_of(results)
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == sorted(f"{e.path.stem}.html" for e in board.collection.entries)
    assert len(list((out / "teams").glob("*.html"))) == len(list((out / "teams").glob("*.png"))) == len(board.teams)
    assert page.count('href="runs/') >= len(board.ranked) and page.count('href="teams/') == len(board.teams)
    gone = board.collection.entries[0].path
    gone.unlink()  # a record removed: its page goes at the next rendering
    render.render(board_of(results), out)
    assert not (out / "runs" / f"{gone.stem}.html").exists() and len(list((out / "runs").iterdir())) == len(runs) - 1


def test_an_empty_results_folder_renders_an_empty_board(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    assert main(["leaderboard", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 0
    assert "0 teams ranked" in capsys.readouterr().out
    assert "No eligible submission yet." in (tmp_path / "out" / "leaderboard.md").read_text()
    assert (tmp_path / "out" / "leaderboard.csv").read_text().count("\n") == 1  # the header only


def test_a_thousand_records_render(tmp_path):
    results = generate(tmp_path / "results", teams=40, submissions=1000, seed=3)
    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.reader(io.StringIO((tmp_path / "out" / "leaderboard.csv").read_text())))
    assert len(rows) == 1 + 40  # the header, then every team once
    assert sum(int(r[rows[0].index("submissions")]) for r in rows[1:]) == 1000


def _label_boxes(fig, gids=("team-label",)):
    renderer = fig.canvas.get_renderer()
    return [a.get_bbox_patch().get_window_extent(renderer) for a in fig.axes[0].texts if a.get_gid() in gids]


def _label_texts(fig, gids=("team-label",)) -> list[str]:
    return [a.get_text() for a in fig.axes[0].texts if a.get_gid() in gids]


def _teams_named(label: str) -> int:
    """How many teams a label stands for: "N teams: ..." or its comma-separated names."""
    found = re.match(r"(\d+) teams:", label)
    return int(found.group(1)) if found else len(re.split(r",\s+", label))


def _overlaps(boxes) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


@pytest.mark.parametrize("clustered", [False, True])
def test_team_labels_never_overlap(tmp_path, clustered):
    from harness.board import plots

    if clustered:  # twelve bests almost on top of each other
        write_all(tmp_path, [make(f"team-{i:02d}", total=0.1 * (1 + i / 200), accuracy=0.92 + i / 10000, minutes=i)
                             for i in range(12)] + [make("far", total=2.5, accuracy=0.95),
                                                    make("$cash$ 100% _x_ {y} ü", total=0.101, accuracy=0.921)])
    else:
        generate(tmp_path)
    board = board_of(tmp_path)
    with plots._style():
        fig = plots.leaderboard_figure(board)
        fig.canvas.draw()
        boxes = _label_boxes(fig)
        assert sum(map(_teams_named, _label_texts(fig))) == len(board.ranked)  # tied points share one label
        tries = _label_boxes(fig, ("attempt-label",))
        assert len(tries) == sum(row.closest is not None and row.closest.plottable for row in board.unranked)
        boxes += tries
        assert _overlaps(boxes) == []
        fixed = [t.get_window_extent() for t in fig.axes[0].texts if t.get_gid() not in ("team-label", "attempt-label")]
        assert not [b for b in boxes for f in fixed if b.overlaps(f)]
        frame = fig.axes[0].get_window_extent()
        assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)


# The five examples' records as `evaluate` wrote them (submissions/*/README.md): team, name, accuracy, score.
EXAMPLES = [("staff-baseline", "baseline-cnn", 0.9036, 0.5981), ("staff-fp16", "pruned-fp16", 0.9002, 0.4942),
            ("staff-w8", "quant-w8a8", 0.9028, 0.2991), ("staff-w8p", "quant-w8a8-pruned", 0.9019, 0.2735),
            ("staff-w5", "quant-w5a5-pruned", 0.9017, 0.1713)]


def _points_under_labels(fig, board, gids) -> list:
    """Points of the plot (display coordinates) that a label's box covers."""
    import numpy as np

    from harness.board import plots

    ax = fig.axes[0]
    limits = (*ax.get_xlim(), *ax.get_ylim())
    xy = ax.transData.transform(np.asarray([plots._xy(e, limits) for e in board.collection.entries if e.plottable]))
    return [(b, tuple(p)) for b in _label_boxes(fig, gids) for p in xy
            if b.x0 - 4 <= p[0] <= b.x1 + 4 and b.y0 - 4 <= p[1] <= b.y1 + 4]


@pytest.mark.parametrize("team", [None, *(t for t, *_ in EXAMPLES)])
def test_labels_never_cover_a_point_on_the_examples_boards(tmp_path, team):
    """The leaderboard and every team's slide of the five examples: no label lies over any point,
    the other teams' grey points included."""
    from harness.board import plots

    write_all(tmp_path, [make(t, n, accuracy=a, total=s, minutes=i) for i, (t, n, a, s) in enumerate(EXAMPLES)])
    board = board_of(tmp_path)
    with plots._style():
        fig = plots.leaderboard_figure(board) if team is None else plots.team_figure(board, team)
        fig.canvas.draw()
        gids = ("team-label", "attempt-label") if team is None else ("team-label",)
        assert _label_boxes(fig, gids) and _points_under_labels(fig, board, gids) == []


# -- the team figure ----------------------------------------------------------------------------------------

def test_team_plot_writes_a_slide_png_and_pdf(tmp_path, capsys):
    results = generate(tmp_path / "results")
    team = board_of(results).ranked[0].team
    assert main(["plot", "--team", team, "--results", str(results), "--out", str(tmp_path / "slides" / "t.png")]) == 0
    png, pdf = tmp_path / "slides" / "t.png", tmp_path / "slides" / "t.pdf"
    with Image.open(png) as im:
        assert im.size == (1920, 1080)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert str(png) in capsys.readouterr().out


def test_team_plot_of_a_team_without_eligible_or_scored_submissions(tmp_path):
    write_all(tmp_path / "r", [make("good", total=0.3), make("broken", total=None, accuracy=None, status="error"),
                               make("close", total=0.2, accuracy=0.88)])
    for team in ("broken", "close", "CLOSE"):
        assert main(["plot", "--team", team, "--results", str(tmp_path / "r"), "--out", str(tmp_path / team)]) == 0
        assert (tmp_path / f"{team}.pdf").exists()


def test_unknown_team_is_an_error_with_suggestions(tmp_path, capsys):
    write_all(tmp_path, [make("prune-juice", total=0.3)])
    assert main(["plot", "--team", "prune-jiuce", "--results", str(tmp_path)]) == 2
    assert "did you mean prune-juice" in capsys.readouterr().err


def test_the_board_takes_its_threshold_and_references_from_the_records(tmp_path):
    low = {"accuracy_threshold": 0.85, "reference_params": 2.8e6}
    write_all(tmp_path / "r", [make("a", total=0.3, accuracy=0.87, rules=low)])
    assert main(["leaderboard", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "o")]) == 0
    board = board_of(tmp_path / "r")
    assert board.rules.accuracy_threshold == 0.85 and board.rules.reference_params == 2.8e6
    # ResNet18 in float16 under these references: its weight term doubles
    assert board.reference == pytest.approx(11_169_162 / 2 / 2.8e6 + 555_676_672 / 2 / 2.8e8, rel=1e-12)
    assert "accuracy ≥ 85%" in (tmp_path / "o" / "leaderboard.md").read_text()


def test_records_made_under_different_rules_are_never_ranked_together(tmp_path, capsys):
    exact = {"accuracy_threshold": 0.9025}
    results = write_all(tmp_path / "r", [make("a", total=0.3, accuracy=0.9002, minutes=1),
                                         make("b", total=0.2, accuracy=0.95, rules=exact, minutes=2),
                                         make("c", total=0.25, accuracy=0.93, rules=exact, minutes=3)])
    out = ["--results", str(results), "--out", str(tmp_path / "o")]
    assert main(["leaderboard", *out]) == 2
    err = capsys.readouterr().err
    assert "made under 2 different sets of rules" in err
    sets = ranking.rule_sets(ranking.collect(results).entries)
    latest, older = sets[0], sets[1]
    assert len(latest.entries) == 2
    assert f"rules {latest.ident}: 2 records (2025-03-03): accuracy_threshold 0.9025" in err
    assert f"rules {older.ident}: 1 record (2025-03-03): accuracy_threshold 0.9" in err
    assert f"--rules {latest.ident} (the latest)" in err and not (tmp_path / "o" / "leaderboard.md").exists()

    assert main(["leaderboard", *out, "--rules", latest.ident]) == 0
    text = (tmp_path / "o" / "leaderboard.md").read_text()
    assert "1 record made under other rules is not shown" in text and "| a |" not in text
    cfg = tmp_path / "old.yaml"
    cfg.write_text("accuracy_threshold: 0.90\n")
    assert main(["leaderboard", *out, "--config", str(cfg)]) == 0
    assert "2 records made under other rules are not shown" in (tmp_path / "o" / "leaderboard.md").read_text()
    cfg.write_text("accuracy_threshold: 0.95\n")
    assert main(["leaderboard", *out, "--config", str(cfg)]) == 2
    assert "no record in" in capsys.readouterr().err
    assert main(["plot", "--team", "b", "--results", str(results), "--out", str(tmp_path / "b")]) == 2
    assert main(["plot", "--team", "b", "--rules", latest.ident, "--results", str(results), "--out",
                 str(tmp_path / "b")]) == 0


def test_records_made_with_different_package_versions_are_said_so(tmp_path):
    def made_with(team: str, torch_version: str | None) -> Record:
        r = make(team)
        if torch_version is not None:
            r.provenance.packages = {"python": "3.11.7", "torch": torch_version, "numpy": "2.4.6"}
        return r

    same = board_of(write_all(tmp_path / "same", [made_with("a", "2.14.1"), made_with("b", "2.14.1")]))
    assert same.mixed_versions() == {} and "package versions" not in tables.to_markdown(same)
    mixed = board_of(write_all(tmp_path / "mixed", [made_with("a", "2.14.1"), made_with("b", "2.15.0"),
                                                    made_with("c", None)]))  # c: made before versions were kept
    assert mixed.mixed_versions() == {"numpy": ["2.4.6", "unrecorded"], "python": ["3.11.7", "unrecorded"],
                                      "torch": ["2.14.1", "2.15.0", "unrecorded"]}
    text = tables.to_markdown(mixed)
    assert "records made with different package versions: numpy 2.4.6 / unrecorded" in text
    assert "torch 2.14.1 / 2.15.0 / unrecorded" in text
