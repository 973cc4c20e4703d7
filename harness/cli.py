"""The command line: thin subcommands over the library. torch is imported only by the two stages.

    python -m harness profile DIR [--data PATH] [--json]
    python -m harness evaluate DIR [DIR ...] --data PATH [--private-data PATH] [--device auto|cpu|cuda]
        [--results DIR] [--json | --quiet] [--skip-evaluated] [--isolation auto|none|bwrap|docker] [--timeout S]
        [--memory SIZE] [--processes N] [--gpus] [--jobs N] [--no-reuse]
        [--slurm [--partition P] [--time T] [--gres G] [--at-once K] [--per-task N] [--sbatch-arg ARG] ...]
    python -m harness slurm status|finish BATCH
    python -m harness private-data PATH [--data PATH] [--json]
    python -m harness leaderboard [--results DIR] [--out DIR] [--rules ID | --config FILE]
    python -m harness plot --team TEAM [--results DIR] [--out FILE] [--rules ID | --config FILE]

Exit status: 0 evaluated and eligible (profile: claims verified), 1 evaluated but not
eligible (profile: claims not verified), 2 invalid submission, 3 error while running it,
130 interrupted (Ctrl-C). With several directories, the worst status wins (3 > 2 > 1 > 0);
each gets its record whatever happens to the others, and a line as soon as it is judged.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from . import __version__
from .errors import EXIT_ELIGIBLE, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_NOT_ELIGIBLE, HarnessError

_SEVERITY = (EXIT_ELIGIBLE, EXIT_NOT_ELIGIBLE, EXIT_INVALID, EXIT_ERROR)
EPILOG = """\
what a submission holds (model.py, weights.pt, submission.yaml): submissions/README.md
score, lower is better (w weights, f MACs per image; p_s, p_u pruned fractions; q_w, q_a bits):
  [1-(p_s+p_u)]*(q_w/32)*w / 5.6e6  +  (1-p_s)*(max(q_w,q_a)/32)*f / 2.8e8
exit status: 0 eligible (profile: claims verified), 1 not eligible (claims not verified),
  2 invalid submission, 3 error while running it; with several directories, the worst;
  130 interrupted (Ctrl-C)"""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as err:
        print(f"error: {err}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - a harness bug: say so, briefly, unless --debug
        print(f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_ERROR


def cmd_profile(args) -> int:
    from .config import load_rules
    from .judge.evaluate import judge

    rules = _limited(load_rules(args.config), args)
    probe = None
    if args.data:
        from .data import load_test

        probe = load_test(args.data)
    records = [judge(d, None, rules, args.device, probe=probe) for d in args.dirs]
    _show(records, args)
    return _worst(records)


def cmd_evaluate(args) -> int:
    from . import record as rec_io
    from .judge.batch import Bar, Batch
    from .judge.evaluate import evaluated, judge
    from .judge.files import identity
    from .judge.pool import EXIT_STOPPED, Pool, Stopped, cores
    from .judge.report import render
    from .text import plain

    talk = not args.json
    if talk:
        _log_to_stderr()
    if args.jobs < 1:
        raise HarnessError("--jobs must be at least 1")
    test, rules, sources = evaluation_setting(args)
    if talk:
        print(_checking(rules, sources), file=sys.stderr)
        if args.jobs > 1:
            print(f"{args.jobs} evaluations at once on {cores()} cores; each stage held to {rules.memory_mb:,} MiB, "
                  f"up to {2 * args.jobs * rules.memory_mb:,} MiB together", file=sys.stderr)
    done = evaluated(args.results, test, rules, sources) if args.skip_evaluated else {}
    limit = rules.submission_mb * 2**20
    earlier = {d: done.get(identity(d, limit) or "") for d in args.dirs} if done else {}
    todo = [d for d in args.dirs if earlier.get(d) is None]
    if args.slurm:
        return _to_slurm(args, rules, todo, len(args.dirs) - len(todo))
    batch = Batch(args.dirs, len(todo), args.jobs)
    several = len(args.dirs) > 1
    records, skipped = [], []
    for d in args.dirs:
        if (path := earlier.get(d)) is not None:
            skipped.append(rec_io.read(path))
            if talk:
                print(batch.skip(d, skipped[-1], path), file=sys.stderr)

    def judge_one(d: str):
        if talk:
            print(batch.start(d) if several else f"evaluating {d} on {test.size:,} test images ...",
                  file=sys.stderr, flush=True)
        with Bar(talk and args.jobs == 1) as progress:
            return judge(d, test, rules, args.device, progress=progress, sources=sources)

    pool: Pool = Pool(args.jobs)
    try:
        with pool:
            for index, r, seconds in pool.run(todo, judge_one):
                written = rec_io.write(r, args.results)
                records.append(r)
                line = batch.verdict(todo[index], r, seconds)
                if talk:
                    if not args.quiet:
                        print(plain(render(r)), flush=True)
                        print(f"  record: {written}", file=sys.stderr)
                        if args.debug and r.traceback:
                            print(plain(r.traceback), file=sys.stderr)
                    if several or args.quiet:
                        print(line, file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        if talk:
            print("\n" + batch.summary(interrupted=True), flush=True)
            print(f"the records above are in {args.results}; to go on, run the same command with --skip-evaluated",
                  file=sys.stderr)
        return EXIT_INTERRUPTED
    except Stopped:
        from .cluster.slurm import why_stopped

        why = why_stopped()  # each submission cut short gets its record: stopped, and why
        _record_stopped([(d, why) for d in pool.running.values()], test, rules, sources, args.device, args.results,
                        talk)
        if talk:
            print("\n" + batch.summary(interrupted=True), flush=True)
        return EXIT_STOPPED
    if args.json:
        _show(records, args)
    elif several or args.skip_evaluated:
        print(batch.summary())
    return _worst([*records, *skipped])


def evaluation_setting(args):
    """What `evaluate`'s options make of an evaluation: the test set, the rules, the checks' images."""
    from .config import load_rules
    from .data import load_test
    from .judge.checks import sources

    rules = _limited(load_rules(args.config), args)
    if args.no_reuse:
        rules = rules.model_copy(update={"reuse_programs": False})
    return load_test(args.data), rules, sources(args.data, rules, args.private_data)


def _record_stopped(stops: list[tuple[str, str]], test, rules, sources, device, results, talk: bool) -> None:
    """Write each (directory, why) of `stops` its stopped record (`evaluate.stopped`) into `results`."""
    from . import record as rec_io
    from .judge.evaluate import stopped

    for d, why in stops:
        written = rec_io.write(stopped(d, test, rules, why, device, sources), results)
        if talk:
            print(f"stopped {d}: {why}; record: {written}", file=sys.stderr, flush=True)


def _to_slurm(args, rules, todo: list[str], skipped: int) -> int:
    """evaluate --slurm: the submissions to evaluate, as one Slurm job array and a finish job."""
    from .cluster import slurm

    if skipped:
        print(f"{skipped} submission{'s' if skipped != 1 else ''} evaluated already (--skip-evaluated): not sent",
              file=sys.stderr)
    if not todo:
        print("nothing to send: every submission has a record")
        return EXIT_ELIGIBLE
    mem = args.mem or f"{2 * rules.memory_mb + slurm.JUDGE_MB}M"  # both stages at their limit, and the judge
    batch = slurm.submit(todo, _forwarded(args), args.results, folder=args.batch, board=args.board,
                         per_task=args.per_task, at_once=args.at_once, partition=args.partition, time=args.time,
                         gres=args.gres, cpus=args.cpus, mem=mem, extra=args.sbatch_arg)
    print(slurm.describe(batch))
    return EXIT_ELIGIBLE


_PATHS = {"data", "private_data", "results", "config"}
_NOT_FORWARDED = {"dirs", "json", "quiet", "skip_evaluated", "jobs", "debug", "func", "command", "slurm", "batch",
                  "board", "per_task", "at_once", "partition", "time", "gres", "cpus", "mem", "sbatch_arg"}


def _forwarded(args) -> list[str]:
    """evaluate's options as each Slurm task passes them on (paths absolute; the cluster's own left out)."""
    from pathlib import Path

    out: list[str] = []
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    for action in commands.choices["evaluate"]._actions:
        value = getattr(args, action.dest, None)
        if action.dest in _NOT_FORWARDED or not action.option_strings or value is None or value == action.default:
            continue
        flag = action.option_strings[-1]
        if value is True:
            out.append(flag)
        else:
            out += [flag, str(Path(value).resolve()) if action.dest in _PATHS else str(value)]
    return out


def cmd_slurm(args) -> int:
    from .cluster import slurm

    if args.step == "status":
        print(slurm.progress(args.batch))
        return EXIT_ELIGIBLE
    batch = slurm.Batch.load(args.batch)  # finish: the records of lost tasks, then the board
    if lost := slurm.lost(batch):
        options = _parser().parse_args(["evaluate", *batch.dirs[:1], *batch.evaluate])
        test, rules, sources = evaluation_setting(options)
        _record_stopped(lost, test, rules, sources, options.device, batch.results, talk=True)
    return cmd_leaderboard(_parser().parse_args(["leaderboard", "--results", batch.results, "--out", batch.board]))


def _log_to_stderr() -> None:
    """The harness's INFO lines (the test set decoded once, ...) on stderr, as plain lines."""
    import logging

    log = logging.getLogger("harness")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def _checking(rules, sources) -> str:
    """What the checks against memorised test images will predict besides the test images."""
    from .judge.checks import drawn

    parts = []
    if sources.unseen is not None:
        parts.append(f"{drawn(rules.unseen_images, sources.unseen.size):,} random training images")
    if sources.private is not None:
        parts.append(f"{drawn(rules.private_images, sources.private.size):,} private images")
    parts += [f"{n:,} {what} test images" for n, what in ((rules.flip_images, "mirrored"),
                                                          (rules.shift_images, "shifted")) if n]
    text = "memorisation checks: " + (", ".join(parts) if parts else "none") + ", shuffled among the test images"
    if sources.unseen is None and rules.unseen_images:
        text += f"\n  the unseen check does not run: {sources.why_no_unseen}"
    return text


def cmd_private(args) -> int:
    from .judge.private import report

    text, data = report(args.path, args.data)
    print(json.dumps(data, indent=2) if args.json else text)
    return EXIT_ELIGIBLE


def cmd_leaderboard(args) -> int:
    import time

    from .board.render import render

    start = time.perf_counter()
    board = _board(args)
    written = render(board, args.out)
    c = board.collection
    print(f"{len(board.ranked)} team{'s' if len(board.ranked) != 1 else ''} ranked, {len(board.unranked)} "
          f"without an eligible submission, "
          f"{len(c.entries)} evaluations read, {len(c.skipped)} unreadable skipped "
          f"({time.perf_counter() - start:.1f} s)")
    for note in board.notes:
        print(f"  note: {note}")
    for path in written.values():
        print(f"  {path}")
    return EXIT_ELIGIBLE


def cmd_plot(args) -> int:
    import difflib

    from .board.plots import save_team
    from .board.ranking import LeaderboardError
    from .record import slug

    board = _board(args)
    team = args.team
    if team not in board.teams:
        folded = [t for t in board.teams if t.casefold() == team.casefold()]
        if len(folded) != 1:
            near = difflib.get_close_matches(team, board.teams, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else f"; teams: {', '.join(board.teams) or 'none'}"
            raise LeaderboardError(f"no evaluation of team {team!r} in {args.results}{hint}")
        team = folded[0]
    out = args.out or f"leaderboard/teams/{slug(team, 'team')}"
    for path in save_team(board, team, out):
        print(path)
    return EXIT_ELIGIBLE


def _board(args):
    """The ranked board of `args.results` under one set of rules (the records', or those `--rules` or
    `--config` picks); unreadable records are reported on stderr."""
    from .board.ranking import build
    from .config import load_rules

    pick = args.rules or (load_rules(args.config) if args.config else None)
    board = build(args.results, load_rules(), pick)
    for s in board.collection.skipped:
        print(f"skipped {s.path}: {s.problem}", file=sys.stderr)
    return board


def _limited(rules, args):
    """The rules with the sandbox options of the command line applied."""
    from .config import parse_size, with_overrides

    return with_overrides(rules, isolation=args.isolation, timeout_s=args.timeout,
                          memory_mb=parse_size(args.memory) if args.memory is not None else None,
                          max_processes=args.processes, docker_image=args.docker_image,
                          docker_gpus=True if args.gpus else None)


def _sandbox_options() -> argparse.ArgumentParser:
    """Where the submission's code runs and its limits (defaults from the competition config)."""
    box = argparse.ArgumentParser(add_help=False)
    box.add_argument("--isolation", choices=("auto", "none", "bwrap", "docker"),
                     help="where the worker runs: bwrap (sandbox), docker (container), none (unconfined); "
                          "auto = bwrap when it works here, else none with a warning (default: config, auto)")
    box.add_argument("--timeout", type=float, metavar="SECONDS", help="worker wall-clock limit (default: config)")
    box.add_argument("--memory", metavar="SIZE", help="worker memory limit, e.g. 8G or 4096 (MiB) (default: config)")
    box.add_argument("--processes", type=int, metavar="N",
                     help="worker processes + threads limit (default: config)")
    box.add_argument("--docker-image", metavar="IMAGE", help="image for --isolation docker (default: config)")
    box.add_argument("--gpus", action="store_true", help="--isolation docker: give the container all GPUs")
    return box


def _show(records, args) -> None:
    from .judge.report import render

    if args.json:
        exclude = {"accuracy", "correct", "total", "flip", "checks"}
        dumped = [json.loads(r.model_dump_json(exclude=exclude if r.kind == "profile" else None)) for r in records]
        print(json.dumps(dumped[0] if len(dumped) == 1 else dumped, indent=2))
        return
    from .text import plain

    for r in records:  # a terminal gets plain text, whatever a record holds (JSON escapes by itself)
        print(plain(render(r)))
        if args.debug and r.traceback:
            print(plain(r.traceback), file=sys.stderr)


def _worst(records) -> int:
    codes = []
    for r in records:
        if r.status == "invalid":
            codes.append(EXIT_INVALID)
        elif r.status == "error":
            codes.append(EXIT_ERROR)
        elif r.kind == "profile":
            codes.append(EXIT_ELIGIBLE if r.claims_verified else EXIT_NOT_ELIGIBLE)
        else:
            codes.append(EXIT_ELIGIBLE if r.eligible else EXIT_NOT_ELIGIBLE)
    return max(codes, key=_SEVERITY.index, default=EXIT_ELIGIBLE)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness", description="CIFAR-10 compression challenge harness.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="competition config YAML (default: the bundled competition.yaml)")
    common.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="where the model runs (default: cuda when present)")
    common.add_argument("--json", action="store_true", help="print the record(s) as JSON on stdout, nothing else")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    box = _sandbox_options()

    prof = sub.add_parser("profile", parents=[common, box], epilog=EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter,
                          help="count, measure, verify and score, without data",
                          description="Count weights and MACs, measure pruning and bit widths, verify the claims "
                                      "and score a submission, without test data (no accuracy).")
    prof.add_argument("dirs", nargs="+", metavar="DIR", help="submission directory")
    prof.add_argument("--data", metavar="PATH", help="test images (as for evaluate) to measure activation bits on, "
                                                     "as evaluate does (default: random images)")
    prof.set_defaults(func=cmd_profile)

    ev = sub.add_parser("evaluate", parents=[common, box], epilog=EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        help="the full evaluation on the CIFAR-10 test set",
                        description="Evaluate submissions on the CIFAR-10 test set and write one record each.")
    ev.add_argument("dirs", nargs="+", metavar="DIR", help="submission directory")
    ev.add_argument("--data", required=True, metavar="PATH",
                    help="torchvision CIFAR-10 root (cifar-10-batches-py/), ImageFolder root with test/<class>/, "
                         "or such a test folder")
    ev.add_argument("--private-data", metavar="PATH",
                    help="the instructor's labelled private images, ImageFolder PATH/<class>/*, any size (default: "
                         "the config's private_data): a submission is eligible only if its accuracy there is within "
                         "private_gap of its test accuracy")
    ev.add_argument("--results", default="leaderboard/results", metavar="DIR",
                    help="where records are written (default: leaderboard/results)")
    ev.add_argument("--quiet", action="store_true",
                    help="no receipts: one verdict line per submission as it is judged, and the summary")
    ev.add_argument("--skip-evaluated", action="store_true",
                    help="skip a submission whose files already have a record in --results made with this test "
                         "set, scoring version and rules (to go on after an interrupted batch)")
    ev.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="evaluate N submissions at once, each stage held to its own limits (default: 1); the "
                         "records are the same as one at a time")
    ev.add_argument("--no-reuse", action="store_true",
                    help="run stage 1 again even where the same files, harness and packages were exported before "
                         "(default: reuse the exported program, which stage 2 checks as untrusted as always)")
    cl = ev.add_argument_group("a Slurm cluster (docs/cluster.md)")
    cl.add_argument("--slurm", action="store_true",
                    help="do not evaluate here: send the submissions to Slurm as one job array (each task runs "
                         "this evaluate on its node) and a job after it that renders the leaderboard")
    cl.add_argument("--batch", metavar="DIR", help="the batch folder, on the shared filesystem (default: "
                                                     "batches/<time>)")
    cl.add_argument("--board", default="leaderboard", metavar="DIR",
                    help="where the job after the array renders the leaderboard (default: leaderboard)")
    cl.add_argument("--per-task", type=int, default=1, metavar="N", help="submissions per array task (default: 1)")
    cl.add_argument("--at-once", type=int, metavar="K", help="at most K tasks running at once (--array=...%%K)")
    cl.add_argument("--partition", metavar="P", help="sbatch --partition")
    cl.add_argument("--time", metavar="T", help="each task's time limit, sbatch --time (e.g. 1:00:00)")
    cl.add_argument("--gres", metavar="G", help="each task's generic resources, sbatch --gres (e.g. gpu:1)")
    cl.add_argument("--cpus", type=int, default=2, metavar="N", help="cores per task (default: 2; the two "
                                                                     "stages overlap)")
    cl.add_argument("--mem", metavar="SIZE", help="memory per task, sbatch --mem (default: 2 x memory_mb + 2 GiB: "
                                                  "both stages at their limit, and the judge)")
    cl.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                    help="another sbatch option for both jobs, e.g. --sbatch-arg=--account=cs101 (repeatable)")
    ev.set_defaults(func=cmd_evaluate)

    sl = sub.add_parser("slurm", help="a batch sent with evaluate --slurm: how far it is",
                        description="status BATCH: each submission's verdict or its task's state, and the finish "
                                    "job's. finish BATCH is what the job after the array runs: a record for "
                                    "each submission left without one, then the leaderboard.")
    sl.add_argument("step", choices=("status", "finish"))
    sl.add_argument("batch", metavar="BATCH", help="the batch folder (evaluate --slurm printed it)")
    sl.add_argument("--debug", action="store_true", help="show tracebacks")
    sl.set_defaults(func=cmd_slurm)

    pd = sub.add_parser("private-data", help="check a folder of private images before an evaluation uses it",
                        description="Report a folder of private images (ImageFolder PATH/<class>/*): the images per "
                                    "class, the files that cannot be read, the images that are near-duplicates of "
                                    "CIFAR-10 training or test images (which a memoriser may have stored), and the "
                                    "standard error the folder's size gives an accuracy (docs/private-data.md).")
    pd.add_argument("path", metavar="PATH", help="the folder of class folders")
    pd.add_argument("--data", metavar="PATH", help="the CIFAR-10 root (train and test) to look for near-duplicates in")
    pd.add_argument("--json", action="store_true", help="print the report as JSON")
    pd.add_argument("--debug", action="store_true", help="show tracebacks")
    pd.set_defaults(func=cmd_private)

    board = argparse.ArgumentParser(add_help=False)
    board.add_argument("--config", help="show the records made under this config's rules (default: the records' "
                                        "own rules, when they share one set)")
    board.add_argument("--rules", metavar="ID", help="show the records made under the set of rules ID (listed when "
                                                     "the records were made under several)")
    board.add_argument("--results", default="leaderboard/results", metavar="DIR",
                       help="folder of the records (default: leaderboard/results)")
    board.add_argument("--debug", action="store_true", help="show tracebacks")
    lb = sub.add_parser("leaderboard", parents=[board], help="rank the teams; write tables, plots and a web page",
                        description="Read every record of --results (never changing them; unreadable ones are "
                                    "reported and skipped) and write leaderboard.md, leaderboard.csv, "
                                    "leaderboard.png, leaderboard.svg and index.html into --out.")
    lb.add_argument("--out", default="leaderboard", metavar="DIR", help="output folder (default: leaderboard)")
    lb.set_defaults(func=cmd_leaderboard)

    pl = sub.add_parser("plot", parents=[board], help="one team's submissions over time, for a presentation",
                        description="Draw all of a team's submissions (accuracy against score), its path from "
                                    "the first to the best, the threshold; slide-sized PNG and PDF.")
    pl.add_argument("--team", required=True, help="team name as in its submission.yaml")
    pl.add_argument("--out", metavar="FILE",
                    help="output file; .png and .pdf are both written (default: leaderboard/teams/TEAM)")
    pl.set_defaults(func=cmd_plot)
    return p
