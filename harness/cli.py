"""The command line: thin subcommands over the library. torch is imported only by the worker.

    python -m harness profile DIR [--json]
    python -m harness evaluate DIR [DIR ...] --data PATH [--device auto|cpu|cuda] [--results DIR] [--json]

Exit status: 0 evaluated and eligible (profile: claims verified), 1 evaluated but not
eligible (profile: claims not verified), 2 invalid submission, 3 error while running it.
With several directories, the worst status wins (3 > 2 > 1 > 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from . import __version__
from .errors import EXIT_ELIGIBLE, EXIT_ERROR, EXIT_INVALID, EXIT_NOT_ELIGIBLE, HarnessError

_SEVERITY = (EXIT_ELIGIBLE, EXIT_NOT_ELIGIBLE, EXIT_INVALID, EXIT_ERROR)


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
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001 - a harness bug: say so, briefly, unless --debug
        print(f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_ERROR


def cmd_profile(args) -> int:
    from .config import load_rules
    from .evaluate import judge

    rules = load_rules(args.config)
    records = [judge(d, None, rules, args.device) for d in args.dirs]
    _show(records, args)
    return _worst(records)


def cmd_evaluate(args) -> int:
    from . import record as rec_io
    from .config import load_rules
    from .data import load_test
    from .evaluate import judge

    rules = load_rules(args.config)
    test = load_test(args.data)
    records = []
    for d in args.dirs:
        if not args.json:
            print(f"evaluating {d} on {test.size:,} test images ...", file=sys.stderr, flush=True)
        r = judge(d, test, rules, args.device)
        path = rec_io.write(r, args.results)
        if not args.json:
            print(f"  record: {path}", file=sys.stderr)
        records.append(r)
    _show(records, args)
    return _worst(records)


def _show(records, args) -> None:
    from .report import render

    if args.json:
        exclude = {"accuracy", "correct", "total", "flip"}
        dumped = [json.loads(r.model_dump_json(exclude=exclude if r.kind == "profile" else None)) for r in records]
        print(json.dumps(dumped[0] if len(dumped) == 1 else dumped, indent=2))
        return
    for r in records:
        print(render(r))
        if args.debug and r.traceback:
            print(r.traceback, file=sys.stderr)


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
    p = argparse.ArgumentParser(prog="python -m harness", description="CIFAR-10 compression challenge harness.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="competition config YAML (default: the bundled competition.yaml)")
    common.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="where the model runs (default: cuda when present)")
    common.add_argument("--json", action="store_true", help="print the record(s) as JSON on stdout, nothing else")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prof = sub.add_parser("profile", parents=[common], help="count, measure, verify and score, without data",
                          description="Count weights and MACs, measure pruning and bit widths, verify the claims "
                                      "and score a submission, without test data (no accuracy).")
    prof.add_argument("dirs", nargs="+", metavar="DIR", help="submission directory")
    prof.set_defaults(func=cmd_profile)

    ev = sub.add_parser("evaluate", parents=[common], help="the full evaluation on the CIFAR-10 test set",
                        description="Evaluate submissions on the CIFAR-10 test set and write one record each.")
    ev.add_argument("dirs", nargs="+", metavar="DIR", help="submission directory")
    ev.add_argument("--data", required=True, metavar="PATH",
                    help="torchvision CIFAR-10 root (cifar-10-batches-py/), ImageFolder root with test/<class>/, "
                         "or such a test folder")
    ev.add_argument("--results", default="leaderboard/results", metavar="DIR",
                    help="where records are written (default: leaderboard/results)")
    ev.set_defaults(func=cmd_evaluate)
    return p
