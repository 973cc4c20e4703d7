"""Exported programs kept for a later judgement (harness/judge/programs.py): the same files, harness and
environment judged again skip stage 1, and anything else exports afresh; a kept program is still
checked by stage 2 as untrusted; failures are never kept; a cache that cannot be written costs the
reuse only; the folder stays under its cap.

Each test has its own programs folder (tests/conftest.py), under isolation none: a submission's
factory here appends a line to a file of the test each time stage 1 calls it, which proves whether
stage 1 ran.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import view
from harness.config import load_rules, with_overrides
from harness.judge import evaluate, files, programs, sandbox
from harness.judge.isolation import Limits
from harness.record import read, write

from .conftest import ORACLE, class_images, exported, make_submission, write_folder
from .test_layout import reached

RULES = with_overrides(load_rules(), isolation="none")
# What differs from one judgement to the next: times, and where the program came from.
VARYING = ("timings", "created_at", "program")


def counted(folder: Path, calls: Path, fail: bool = False) -> Path:
    """The oracle, whose factory appends a line to `calls` each time it runs (only unconfined can it)."""
    end = "raise RuntimeError('this factory fails')" if fail else "return Oracle()"
    code = ORACLE + (f"\n\ndef build_counted():\n    with open({str(calls)!r}, 'a') as f:\n"
                     f"        f.write('built\\n')\n    {end}\n")
    sub = make_submission(folder, code, factory="build_counted", state=None if not fail else {})
    calls.unlink(missing_ok=True)  # make_submission called the factory itself
    return sub


def runs(calls: Path) -> int:
    """How many times stage 1 called the factory."""
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def kept() -> list[Path]:
    return sorted(programs.folder().glob(f"*{programs.SUFFIX}"))


def key_of(sub: Path, rules=RULES) -> str:
    """The key the judge files `sub`'s program under."""
    sha = files.combine(files.read(sub, rules.submission_mb * 2**20).hashes)
    return programs.key(sha, sandbox.choose(rules, "cpu").environment())


def same_but_varying(a: dict, b: dict) -> dict:
    """`a` and `b` without what differs between judgements (VARYING, the checks' random seeds)."""
    def strip(rec: dict) -> dict:
        out = {k: v for k, v in rec.items() if k not in VARYING}
        out["provenance"] = {k: v for k, v in rec["provenance"].items() if k not in VARYING}
        out["checks"] = [{k: v for k, v in c.items() if k != "seed"} for c in rec["checks"]]
        return out
    return {"first": strip(a), "second": strip(b)}


def test_the_same_submission_judged_again_reuses_its_program(tmp_path):
    """Ten images, fewer than the probe's 16, and no mirrored nor shifted ones: activation bits are
    measured on the same images each time, not on a random draw, so that the two records can be
    compared (as tests/test_golden.py does)."""
    from harness.data import load_test

    calls = tmp_path / "calls"
    sub = counted(tmp_path / "oracle", calls)
    test = load_test(write_folder(tmp_path / "data", *class_images(per_class=1)))
    rules = with_overrides(RULES, flip_images=0, shift_images=0)
    first = evaluate.judge(sub, test, rules, "cpu")
    assert first.status == "ok" and first.accuracy == 1.0 and runs(calls) == 1
    assert first.provenance.program == "exported" and "build" in first.timings and len(kept()) == 1
    second = evaluate.judge(sub, test, rules, "cpu")
    assert runs(calls) == 1  # stage 1 did not run
    assert second.provenance.program == "reused" and "build" not in second.timings and "worker" in second.timings
    pair = same_but_varying(first.model_dump(mode="json"), second.model_dump(mode="json"))
    assert pair["first"] == pair["second"]
    # --skip-evaluated is unaffected: a record of a reused program repeats the evaluation as any does
    results = tmp_path / "results"
    path = write(second, results)
    assert evaluate.evaluated(results, test, rules) == {second.provenance.submission_sha256: path}
    assert read(path).provenance.program == "reused"
    facts = dict(view.build(second).provenance[0].items)  # the run page's provenance says so
    assert facts["program"].startswith("reused") and dict(view.build(first).provenance[0].items)["program"] == (
        "exported by stage 1")
    # reuse_programs: false (evaluate --no-reuse) exports afresh, and keeps the fresh program
    fresh = evaluate.judge(sub, test, with_overrides(rules, reuse_programs=False), "cpu")
    assert runs(calls) == 2 and fresh.provenance.program == "exported" and len(kept()) == 1


def test_other_files_harness_or_environment_miss(tmp_path, monkeypatch):
    import torch

    calls = tmp_path / "calls"
    sub = counted(tmp_path / "oracle", calls)
    assert evaluate.judge(sub, None, RULES, "cpu").provenance.program == "exported" and runs(calls) == 1
    before = key_of(sub)
    with monkeypatch.context() as m:  # another harness (its stage 1 code edited, or another version)
        m.setattr(programs, "harness_identity", lambda: "harness 0.1.0 edited")
        assert key_of(sub) != before
    assert key_of(sub, with_overrides(RULES, memory_mb=4096)) != before  # other limits: not reused under tighter
    with monkeypatch.context() as m:  # another environment: other packages, say
        m.setattr(sandbox, "python_environment", lambda: "python 3.99; torch 9.9")
        assert key_of(sub) != before
        assert evaluate.judge(sub, None, RULES, "cpu").provenance.program == "exported" and runs(calls) == 2
    state = torch.load(sub / "weights.pt")
    state["fc.bias"][0] += 2**-20  # another weights file, the same model but for one number
    torch.save(state, sub / "weights.pt")
    again = evaluate.judge(sub, None, RULES, "cpu")
    assert again.provenance.program == "exported" and runs(calls) == 3 and again.status == "ok"
    assert len(kept()) == 3  # one per key


def test_a_kept_program_is_still_checked_by_stage_two(tmp_path):
    """Garbage in the cache is refused by stage 2 and the submission is judged afresh (a damaged cache
    decides no verdict), not a crash; a program swapped in for another model is judged as that model:
    the cache folder is trusted, and only the judge may write it."""
    calls = tmp_path / "calls"
    sub = counted(tmp_path / "oracle", calls)
    folder = programs.folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = programs.Programs(folder).path(key_of(sub))
    path.write_bytes(b"not a program " * 100)
    garbage = evaluate.judge(sub, None, RULES, "cpu")
    assert garbage.status == "ok" and garbage.provenance.program == "exported" and runs(calls) == 1
    assert path.read_bytes().startswith(b"PK")  # the fresh program replaced the garbage
    import torch

    other = exported(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, 10)), tmp_path)
    path.write_bytes(other.read_bytes())
    swapped = evaluate.judge(sub, None, RULES, "cpu")
    assert swapped.status == "ok" and swapped.params == 30_730 and runs(calls) == 1  # the oracle has 20


def test_a_failed_stage_one_is_never_kept(tmp_path):
    calls = tmp_path / "calls"
    sub = counted(tmp_path / "failing", calls, fail=True)
    for n in (1, 2):
        rec = evaluate.judge(sub, None, RULES, "cpu")
        assert rec.status == "error" and "this factory fails" in rec.errors[0] and runs(calls) == n
        assert rec.provenance.program is None and kept() == []


def test_an_unwritable_cache_does_not_fail_the_evaluation(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(programs, "folder", lambda: blocker / "programs")  # cannot be made, even by root
    sub = make_submission(tmp_path / "oracle", ORACLE)
    with caplog.at_level(logging.WARNING, logger=programs.__name__):
        rec = evaluate.judge(sub, None, RULES, "cpu")
    assert rec.status == "ok" and rec.provenance.program == "exported" and not rec.warnings
    assert "was not kept for a later judgement" in caplog.text


def test_the_least_recently_used_go_past_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(programs, "PROGRAMS_MB", 2.5 / 1024)  # 2.5 KiB
    store = programs.Programs(tmp_path / "programs")
    graph = tmp_path / "graph.pt2"
    graph.write_bytes(b"x" * 1024)
    a, b, c, d = (programs.key(name, "env") for name in "abcd")
    store.put(a, graph)
    os.utime(store.path(a), (1000, 1000))
    store.put(b, graph)
    os.utime(store.path(b), (2000, 2000))
    assert store.get(a) == store.path(a)  # a used again: b is now the least recently used
    store.put(c, graph)  # 3 KiB: one goes
    assert {p.name for p in store.root.iterdir()} == {f"{a}.pt2", f"{c}.pt2"} and store.get(b) is None
    big = tmp_path / "big.pt2"
    big.write_bytes(b"x" * 3000)
    store.put(d, big)  # larger than the cap on its own: not kept, and the rest not kept either
    assert sum(p.stat().st_size for p in store.root.iterdir()) <= 2.5 * 1024 and store.get(d) is None
    stale = store.root / ".tmp-dead.part"  # left by a judge that died while writing
    stale.write_bytes(b"y")
    os.utime(stale, (1000, 1000))
    store.put(a, graph)
    assert not stale.exists() and store.get(a) is not None
    with pytest.raises(ValueError):
        store.path("../elsewhere")


def test_the_key_covers_the_harness_code_that_stage_one_runs():
    """`STAGE_ONE` holds every harness module stage 1 imports (harness/export/ and the ground floor
    it reaches), as tests/test_layout.py derives them from the tree; each edit of one is a new key."""
    seen = reached(("harness.export",))
    tops = {m.split(".")[1] for m in seen if m.count(".") >= 1}
    named = {n.removesuffix(".py") for n in programs.STAGE_ONE}
    assert tops <= named, tops - named
    assert programs.harness_identity().startswith(f"harness {programs.__version__} ")


def test_the_environment_names_the_isolation_its_limits_and_its_software(monkeypatch):
    from harness.export.imports import PROVIDED

    assert set(PROVIDED) <= set(sandbox.STAGE_PACKAGES)
    lim = Limits(timeout_s=60, memory_mb=4096, processes=128, scratch_mb=256)
    none, bwrap = sandbox.Unconfined(limits=lim), sandbox.Bubblewrap(limits=lim)
    software = sandbox.python_environment()
    assert software.startswith(f"python {sys.version}; torch ") and "brevitas" in software
    assert none.environment() != bwrap.environment() and none.environment().endswith(software)
    assert sandbox.Unconfined(limits=Limits(60, 4096, 128, 512)).environment() != none.environment()
    assert sandbox.Unconfined(limits=lim, device="cuda").environment() == none.environment()  # one program
    asked = []

    def inspect(argv, **kwargs):
        asked.append(argv)
        return subprocess.CompletedProcess(argv, 0, stdout="sha256:feed\n", stderr="")

    monkeypatch.setattr(sandbox.subprocess, "run", inspect)
    docker = sandbox.Docker(limits=lim, image="img:1")
    assert docker.environment() == docker.environment() and docker.environment().endswith("; image sha256:feed")
    assert asked == [["docker", "image", "inspect", "--format", "{{.Id}}", "img:1"]]  # asked once
    monkeypatch.setattr(sandbox.subprocess, "run", lambda argv, **kw: subprocess.CompletedProcess(argv, 1, "", "no"))
    assert sandbox.Docker(limits=lim, image="img:2").environment() is None  # unknown: nothing reused nor kept


def test_the_parent_reads_versions_without_importing_torch():
    probe = ("import sys; from harness.judge import programs, sandbox; sandbox.python_environment(); "
             "programs.harness_identity(); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
