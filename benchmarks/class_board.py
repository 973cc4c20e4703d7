"""A class to look at: about 25 teams' records with the mix a real class produced, the board rendered.

    python benchmarks/class_board.py [--out /tmp/class-board] [--shots /tmp/board-shots]

Writes the records into OUT/results (most eligible teams between 90.0 and 90.4 % accuracy, five
teams tied on one point (the staff example handed in as is), two junk attempts at score 0.01,
teams with nothing eligible: one all errors, one with long multi-line errors naming the
instructor's absolute paths, one just under the threshold, one whose claims fail), renders the
board into OUT/board (timing it without the teams' slides, with them, and again with them
unchanged), draws two team slides, and screenshots index.html at 1280 and
1920 px wide with headless chromium when it is installed. Prints what it wrote and the times.
Not part of the test suite; `tests/test_board_class.py` uses `write_class`.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

START = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
ROOT = "/home/prof/course/subs"  # where the instructor keeps the submissions (absolute, never shown)
SHOT_WIDTHS = (1280, 1920)  # px, the browser windows of the screenshots
SHOT_HEIGHT = 2400  # px
NOTE = "Teams as their submission.yaml names them: no roster binds them to folders."

ELIGIBLE_TEAMS = ["tiny-tigers", "prune-juice", "bit-shifters", "quant-quokkas", "low-rankers", "sparse-squad",
                  "the-distillers", "mobile-moles", "half-precision", "the-lottery-ticket-hypothesis-reading-group",
                  "depthwise-dragons", "pareto-pals",
                  "kernel-panic", "zero-heroes"]
TIED_TEAMS = ["copycats", "example-enjoyers", "staff-fans", "w5-or-bust", "late-night-lab"]
JUNK_TEAMS = ("grad-students", "fp4-fanatics")  # eligible teams that also tried something silly
FOLDERS = {"the-very-long-team-name-of-group-seven": "team7"}  # a team whose folder has another name
TIED = (0.9017, 0.1713)  # accuracy, score: the staff example quant-w5a5-pruned, handed in unchanged
LONG_ERROR = ("RuntimeError:\n"
              "  Error(s) in loading state_dict for ResNetTiny:\n"
              f"\tsize mismatch for layer1.0.conv1.weight: copying a param with shape torch.Size([32, 32, 3, 3]) "
              f"from checkpoint {ROOT}/team7/weights.pt, the shape in current model is torch.Size([16, 32, 3, 3]).\n"
              f"  File \"{ROOT}/team7/model.py\", line 88, in build")
IMPORT_ERROR = (f"{ROOT}/broken-builders/model.py: importing it raised ModuleNotFoundError: No module named "
                f"'timm' at model.py:3 (<module>) `import timm`")


def write_class(folder: str | Path, seed: int = 7) -> Path:
    """Write the class's records into `folder` (created); returns it."""
    from harness import record

    rng = random.Random(seed)
    folder = Path(folder)
    minute = iter(range(0, 100_000, 53))

    def add(team, name, accuracy, total, **kw):
        record.write(_record(team, name, accuracy, total, next(minute), **kw), folder)

    for i, team in enumerate(ELIGIBLE_TEAMS + list(JUNK_TEAMS)):
        for k in range(rng.randint(1, 4)):  # a few attempts first, some under the threshold
            add(team, f"{team}-v{k}", round(rng.uniform(0.885, 0.9045), 4), round(10 ** rng.uniform(-1.3, 0.1), 4))
        add(team, f"{team}-final", round(0.9 + 0.004 * (i + 0.5) / len(ELIGIBLE_TEAMS + list(JUNK_TEAMS)), 4),
            round(10 ** rng.uniform(-1.25, -0.1), 4))
    for team in JUNK_TEAMS:  # score 0.01: a model that predicts almost nothing
        add(team, f"{team}-tiny", round(rng.uniform(0.10, 0.35), 4), 0.01)
    for team in TIED_TEAMS:
        add(team, "quant-w5a5-pruned", *TIED)
    add("just-under", "ju-v1", 0.8872, 0.21)
    add("just-under", "ju-v2", 0.8991, 0.18)
    add("claims-too-much", "ctm-v1", 0.9131, 0.09, eligible=False, reasons=["claims not verified"],
        failures=["weight_bits: declared 4, measured 8"])
    add("broken-builders", "bb-v1", None, None, status="invalid", errors=[IMPORT_ERROR])
    add("broken-builders", "bb-v2", None, None, status="error", errors=[f"worker killed while predicting: wall clock "
                                                                          f"limit of 600 s\n{ROOT}/broken-builders"])
    add("the-very-long-team-name-of-group-seven", "t7-v1", None, None, status="error", errors=[LONG_ERROR])
    add("the-very-long-team-name-of-group-seven", "t7-v2", None, None, status="error",
        errors=["RuntimeError:\n\n" + LONG_ERROR.split("\n", 1)[1]])
    return folder


def _record(team, name, accuracy, total, minutes, status="ok", eligible=None, reasons=None, errors=(), failures=()):
    from harness.config import load_rules
    from harness.record import Check, Compression, Provenance, Record, Score

    threshold = load_rules().accuracy_threshold
    if eligible is None:
        eligible = status == "ok" and accuracy >= threshold
    if reasons is None:
        reasons = [] if eligible else ([f"accuracy {accuracy:.2%} below 90%"] if status == "ok" else
                                       ["invalid submission" if status == "invalid" else "error while running"])
    checks = [] if accuracy is None else [
        Check(name="unseen", ran=True, images=1000, accuracy=accuracy, reference=accuracy, gap=0.0, margin=0.02,
              tolerance=0.05, passed=True)]
    score = None if total is None else Score(params_term=0.4 * total, ops_term=0.6 * total, total=total)
    folder = f"{ROOT}/{FOLDERS.get(team, team)}"
    return Record(team=team, name=name, directory=folder, status=status, errors=list(errors),
                  accuracy=accuracy, correct=None if accuracy is None else round(accuracy * 1e4), total=10_000,
                  checks=checks, params=None if total is None else 400_000, macs=None if total is None else 20_000_000,
                  declared=Compression(weight_bits=8, activation_bits=8), score=score, eligible=eligible,
                  reasons=reasons, claims_verified=not failures, claim_failures=list(failures),
                  provenance=Provenance(harness_version="0.1.0", scoring_version="1",
                                        created_at=(START + timedelta(minutes=minutes)).isoformat(
                                            timespec="milliseconds")))


def screenshot(page: Path, png: Path, width: int, height: int = SHOT_HEIGHT) -> bool:
    """index.html as headless chromium shows it in a window `width` px wide; False without chromium."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return False
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={png}", f"--window-size={width},{height}", page.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/class-board"))
    parser.add_argument("--shots", type=Path, default=Path("/tmp/board-shots"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness.board import plots, ranking, render
    from harness.board.pages import team_href
    from harness.config import load_rules

    shutil.rmtree(args.out / "results", ignore_errors=True)
    results = write_class(args.out / "results")
    board = ranking.build(results, load_rules())
    if not board.notes:
        board.notes.append(NOTE)
    shutil.rmtree(args.out / "board", ignore_errors=True)
    times = {}
    for what, slides in (("without slides", False), ("with every slide drawn", True),
                         ("again, slides unchanged", True)):
        t0 = time.perf_counter()
        written = render.render(board, args.out / "board", slides=slides)
        times[what] = time.perf_counter() - t0
    print(f"{len(board.teams)} teams, {len(board.collection.entries)} records rendered into {args.out / 'board'}: "
          + ", ".join(f"{what} {seconds:.1f} s" for what, seconds in times.items()))
    args.shots.mkdir(parents=True, exist_ok=True)
    shutil.copy(written["leaderboard.png"], args.shots / "leaderboard.png")
    for team in (board.ranked[0].team, "the-very-long-team-name-of-group-seven", TIED_TEAMS[0], JUNK_TEAMS[0]):
        for path in plots.save_team(board, team, args.shots / f"team-{team}"):
            print(f"  {path}")
    for width in SHOT_WIDTHS:
        png = args.shots / f"index-{width}.png"
        if screenshot(written["index.html"], png, width):
            print(f"  {png}")
    team_page = args.out / "board" / team_href("the-very-long-team-name-of-group-seven")
    if screenshot(team_page, args.shots / "team-page-1280.png", 1280, 1600):
        print(f"  {args.shots / 'team-page-1280.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
