"""One view of a record (harness/view.py) for the terminal and the run page, one slug, one stylesheet.

The slug's oracles are the functions it replaced (record file names, team pages, `plot`'s default
file), copied here as they were: for ordinary names the names and URLs are unchanged.
"""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import pytest

from harness import view
from harness.board import pages, ranking, render
from harness.judge.report import render as report
from harness.record import Check, Compression, Flip, Layer, Provenance, Record, Score, file_stem, slug
from tests.test_leaderboard import RULES, make, write_all

from .conftest import REPO

ORDINARY = ["alpha", "tiny-tigers", "prune_juice", "Team 7", "the-very-long-team-name-of-group-seven",
            "quant-w8a8-pruned", "baseline-cnn", "v2 (final)", "bit/shifters", "Zoë's team", "a" * 40, "x" * 300,
            "--lead", "", "!!!", "the-lottery-ticket-hypothesis-reading-group", "résumé", "42"]


def old_record_slug(text: str) -> str:  # harness/record.py's _slug
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40].strip("-") or "x"


def old_team_href(team: str) -> str:  # harness/board/pages.py's team_href
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", team).strip("-")[:40] or "team"
    return f"teams/{s}-{hashlib.sha256(team.encode()).hexdigest()[:8]}.html"


def old_plot_default(team: str) -> str:  # harness/cli.py's cmd_plot
    return f"leaderboard/teams/{re.sub(r'[^A-Za-z0-9_.-]+', '-', team).strip('-.') or 'team'}"


def _record(team: str = "t", name: str = "n", **fields) -> Record:
    prov = Provenance(harness_version="t", scoring_version="3", created_at="2025-03-03T09:00:00.000+00:00",
                      rules={"reference_params": 5.6e6, "reference_macs": 2.8e8, "accuracy_threshold": 0.9})
    return Record(**{"team": team, "name": name, "directory": "/home/prof/subs/t7", "status": "ok",
                     "provenance": prov, **fields})


@pytest.mark.parametrize("name", ORDINARY)
def test_record_file_names_are_as_before(name):
    assert slug(name) == old_record_slug(name)
    rec = _record(name, name + "-v1")
    stamp = re.sub(r"[^0-9T]", "", rec.provenance.created_at)[:15]
    who = hashlib.sha256(f"{rec.team}\0{rec.name}".encode()).hexdigest()[:8]
    assert file_stem(rec) == f"{stamp}-{old_record_slug(rec.team)}-{old_record_slug(rec.name)}-{who}"


@pytest.mark.parametrize("name", ORDINARY)
def test_team_pages_and_the_plot_default_are_as_before_for_ordinary_names(name):
    cut = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40]
    if not cut.endswith("-"):  # before, a name cut at a '-' kept it at the end of its page's name
        assert pages.team_href(name) == old_team_href(name)
    if "." not in name and len(cut) <= 40 and len(re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")) <= 40:
        assert f"leaderboard/teams/{slug(name, 'team')}" == old_plot_default(name)
    assert pages.team_slide_href(name) == pages.team_href(name).removesuffix(".html") + ".png"


def test_one_slug_rule_where_the_old_ones_differed():
    long = "a" * 39 + "-b"  # cut at 40 characters: before, the team page kept the trailing '-'
    assert slug(long) == "a" * 39 and pages.team_href(long).startswith(f"teams/{'a' * 39}-")
    assert slug("v1.2", "team") == "v1-2"  # before, `plot` kept dots in its file name
    assert slug("", "team") == "team" and slug("") == "x"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", slug("../" * 50 + "é" * 99))


def _full() -> Record:
    c = Compression(unstructured_pruning=0.25, weight_bits=8, activation_bits=8)
    checks = [Check(name="unseen", ran=True, images=1000, accuracy=0.9, reference=0.91, gap=0.01, margin=0.02,
                    tolerance=0.05, passed=True),
              Check(name="private", ran=False, note="no private images at /home/prof/private")]
    layers = [Layer(layer="features.0", op="conv", params=432, macs=442_368, zeros=3, weight_bits=8),
              Layer(layer="x" * 40, op="matmul", params=10, macs=10, weight_bits=8, activation_bits=8),
              Layer(layer="pool", op="reduction", params=0, macs=64)]
    return _record(params=442, macs=442_442, structured_mac_share=0.0, layers=layers, declared=c,
                   measured=Compression(unstructured_pruning=0.2994, weight_bits=8, activation_bits=8), effective=c,
                   claims_verified=True, score=Score(params_term=0.01, ops_term=0.02, total=0.03), accuracy=0.91,
                   correct=9100, total=10_000, checks=checks, eligible=True,
                   flip=Flip(subset=20, accuracy=0.9, flipped_accuracy=0.5, gap=0.4, flagged=True),
                   warnings=["File /home/prof/subs/t7/model.py:\nline 2"], errors=[])


def test_the_terminal_text_is_the_views():
    text = report(_full())
    lines = text.splitlines()
    assert lines[0] == "t/n  (/home/prof/subs/t7)  status: ok"
    assert lines[1] == ("  layer                            op            weights          MACs     zeros w bits "
                        "a bits")
    assert lines[3] == "  features.0                       conv              432       442,368         3      8"
    assert lines[4].startswith("  …" + "x" * 31 + " matmul") and lines[5].endswith("64")  # no zeros for a pool
    assert "  weights w = 442   MACs f = 442,442 per image" in lines
    assert "                           declared   measured   credited" in lines
    assert "  unstructured_pruning       0.2500     0.2994     0.2500" in lines
    assert "  weight_bits                     8          8          8" in lines
    assert "  claims: verified" in lines and "  score = 0.0100 (weights) + 0.0200 (MACs) = 0.0300" in lines
    assert any(x.startswith("  the most you may declare: structured_pruning 0.0000, unstructured_pruning 0.2994")
               for x in lines)
    assert "  accuracy: 91.00% (9,100/10,000)" in lines
    assert "  check private: did not run (no private images at /home/prof/private)" in lines
    assert "  flip check on 20 images: 90.00% original, 50.00% flipped  FLAGGED" in lines
    assert "  warning: File /home/prof/subs/t7/model.py:\n           line 2" in text
    assert lines[-1] == "  ELIGIBLE"
    assert "layer " not in report(_full(), layers=False) and "Provenance" not in text


def test_an_error_record_shows_its_errors_and_no_verdict():
    rec = _record(status="error", errors=["RuntimeError:\nboom"], reasons=["error while running"])
    assert report(rec) == "t/n  (/home/prof/subs/t7)  status: error\n  error: RuntimeError:\n         boom"
    page = view.html(view.build(rec))
    assert '<span class="no">not eligible</span>: error while running' in page and "<pre>RuntimeError:\nboom" in page


def test_the_run_page_shows_what_the_terminal_shows_and_the_guidance():
    rec = _full()
    shown = view.build(rec, relative_paths=True, record_file="r.json")
    page = view.html(shown, when="Evaluated 2025-03-03 09:00 UTC")
    for s in shown.sections:  # every fact, row and message of the terminal's sections is on the page
        texts = ([c for r in s.rows for c in r] if isinstance(s, view.Table)
                 else [v for _, v in s.items] if isinstance(s, view.Facts) else list(s.items))
        assert all(html.escape(t) in page for t in texts), s.key
    assert "the most you may declare" in page and "what if (hypothetical" in page
    assert "/home/prof" not in page and "File model.py:" in page  # paths relative to the submission
    assert page.index("What you may declare") < page.index("Receipt") < page.index("Provenance")
    assert "<td>record</td><td>r.json</td>" in page
    assert "/home/prof" in view.text(view.build(rec))  # the terminal shows the paths as they are


def test_the_board_pages_share_one_stylesheet(tmp_path):
    results = write_all(tmp_path / "r", [make("alpha", total=0.2), make("beta", "b1", total=None, accuracy=None,
                                                                        status="error", errors=["boom"])])
    out = tmp_path / "out"
    render.render(ranking.build(results, RULES), out, slides=False)
    written = [out / "index.html", *(out / "runs").glob("*.html"), *(out / "teams").glob("*.html")]
    assert len(written) == 5
    for path in written:
        styles = re.findall(r"<style>(.*?)</style>", path.read_text(), re.S)
        assert styles == [pages.STYLE], path
    assert '<body class="index">' in (out / "index.html").read_text()
    sources = [p for p in (REPO / "harness").rglob("*.py") if "<style" in p.read_text()]
    assert [p.relative_to(REPO).as_posix() for p in sources] == ["harness/board/pages.py"]


def test_the_view_is_below_the_judge_and_the_board():
    text = Path(view.__file__).read_text()
    assert "from .judge" not in text and "from .board" not in text
    assert "from .. import view" in (REPO / "harness/judge/report.py").read_text()
    assert "from .. import view" in (REPO / "harness/board/pages.py").read_text()
