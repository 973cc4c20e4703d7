"""Golden record: one fixed submission on fixed data, through the whole judge, field by field.

`tests/golden/tiny-cnn/` is a tiny CNN with fixed weights (made once by
`tests/golden/make_tiny_cnn.py`): two convolutions and a linear layer, float16 values, unstructured
zeros and one entirely zero output channel; its manifest declares pruning below what is measured
and 16-bit weights and activations, so that declared, measured, effective, the MAC-share cap and
the score are all non-trivial. It is evaluated with `python -m harness evaluate` (in this process,
`--isolation none --device cpu`, the bundled rules) on `class_images(per_class=1)` of
tests/conftest.py written as an ImageFolder, and the record it writes is compared with
`tests/golden/record.json`. Ten images, fewer than the rules' `probe_images` (16), so that the probe
on which stage 2 measures activation bits is the whole test set: it takes the first 16 images of a
fresh random order, so on a larger set of these flat images the measured activation bits depend on
the draw (this submission measured 8 or 16 at its linear layer's input, run by run).
The comparison:

* every field, except those that differ from run to run or machine to machine: `timings`,
  `provenance.created_at`, the hashes and paths (`directory`, `provenance.submission_sha256`,
  `provenance.files`, `provenance.dataset_sha256`, `provenance.dataset`) and the versions of the
  software (`provenance.harness_version`, `provenance.torch_version`, `provenance.packages`), and the
  seeds of the checks' random draws (`checks[i].seed`);
  `provenance.device` is compared up to its first word (`cpu`; the thread count is the machine's);
* `provenance.scoring_version`, `provenance.record_version` and `provenance.rules` exactly;
* integers, strings and booleans exactly; floats to a relative 1e-9 (`math.isclose`, no absolute
  tolerance: an expected 0.0 must be 0.0); a field that appears or disappears is a difference.

On a mismatch the message lists every differing field with its expected and actual value.

Regenerating it, deliberately (after a change of the counting, the scoring or the record that is
meant to change this record):

    HARNESS_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py -k test_golden_record

rewrites `tests/golden/record.json` from the run (its `provenance.dataset`, a temporary folder,
left empty) and skips the test, saying so; review `git diff tests/golden/record.json` and commit
it with the change that explains it (bump `SCORING_VERSION` when the score moved).

Also here: records written by an older harness (`tests/golden/record-v1.json`, written by the
harness at record version 1 / scoring version 1: `uncounted_ops`, layer op `linear`, no
`structured_mac_share` nor `score.ops_pruning`) still load, rank and render beside current ones.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

from harness import record
from harness.board import ranking
from harness.cli import main
from harness.config import load_rules

from .conftest import REPO, class_images, write_folder

GOLDEN = Path(__file__).resolve().parent / "golden"
SUBMISSION = GOLDEN / "tiny-cnn"
RECORD = GOLDEN / "record.json"
RECORD_V1 = GOLDEN / "record-v1.json"
UPDATE = "HARNESS_UPDATE_GOLDEN"
REL = 1e-9  # relative tolerance of floats

# Not compared: times, hashes and paths, versions of the software (a prefix covers its subfields).
IGNORED = ("timings", "provenance.created_at", "directory", "provenance.submission_sha256", "provenance.files",
           "provenance.dataset_sha256", "provenance.dataset", "provenance.harness_version",
           "provenance.torch_version", "provenance.packages")
# Compared after this normalisation: the device's kind, not its thread count or model.
NORMALISED = {"provenance.device": lambda v: v.split(" (")[0] if isinstance(v, str) else v}


def _ignored(path: str) -> bool:
    if path.startswith("checks[") and path.endswith(".seed"):  # each evaluation draws its own
        return True
    return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in IGNORED)


def _same(expected, actual) -> bool:
    if type(expected) is not type(actual):  # 1 vs 1.0 vs True: a changed type is a difference
        return False
    if isinstance(expected, float):
        return math.isclose(expected, actual, rel_tol=REL, abs_tol=0.0) or (math.isnan(expected) and math.isnan(actual))
    return expected == actual


def differences(expected, actual, path: str = "") -> list[str]:
    """Every field where `actual` differs from `expected` (JSON values), as 'path: expected X, actual Y'."""
    if _ignored(path):
        return []
    if path in NORMALISED:
        expected, actual = NORMALISED[path](expected), NORMALISED[path](actual)
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(expected.keys() | actual.keys()):
            sub = f"{path}.{key}" if path else key
            if _ignored(sub):
                continue
            if key not in actual:
                out.append(f"{sub}: expected {expected[key]!r}, actual (missing)")
            elif key not in expected:
                out.append(f"{sub}: expected (absent), actual {actual[key]!r}")
            else:
                out += differences(expected[key], actual[key], sub)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        out = [] if len(expected) == len(actual) else [
            f"{path}: expected {len(expected)} items, actual {len(actual)}"]
        for i in range(max(len(expected), len(actual))):
            sub = f"{path}[{i}]"
            if i >= len(actual):
                out.append(f"{sub}: expected {expected[i]!r}, actual (missing)")
            elif i >= len(expected):
                out.append(f"{sub}: expected (absent), actual {actual[i]!r}")
            else:
                out += differences(expected[i], actual[i], sub)
        return out
    return [] if _same(expected, actual) else [f"{path}: expected {expected!r}, actual {actual!r}"]


def test_golden_record(tmp_path, capsys, monkeypatch):
    data = write_folder(tmp_path / "data", *class_images(per_class=1))
    results = tmp_path / "results"
    monkeypatch.chdir(REPO)  # the record's directory as the instructor types it
    code = main(["evaluate", str(SUBMISSION.relative_to(REPO)), "--data", str(data), "--results", str(results),
                 "--json", "--isolation", "none", "--device", "cpu"])
    printed = json.loads(capsys.readouterr().out)
    files = list(results.glob("*.json"))
    assert len(files) == 1, files
    actual = json.loads(files[0].read_text(encoding="utf-8"))
    assert printed == actual  # what --json prints is what was recorded
    if os.environ.get(UPDATE) == "1":
        actual["provenance"]["dataset"] = None  # a temporary folder
        record.Record.model_validate(actual)
        RECORD.write_text(json.dumps(actual, indent=2) + "\n", encoding="utf-8")
        pytest.skip(f"{UPDATE}=1: rewrote {RECORD.relative_to(REPO)} from this run; review its diff")
    expected = json.loads(RECORD.read_text(encoding="utf-8"))
    problems = differences(expected, actual)
    assert not problems, (f"the record of {SUBMISSION.name} differs from {RECORD.relative_to(REPO)} in "
                          f"{len(problems)} field(s) (if the change is meant, regenerate it: see this module's "
                          "docstring):\n  " + "\n  ".join(problems))
    assert code == 0 and actual["eligible"], actual["errors"]


def test_the_golden_record_is_not_trivial():
    """The stored record exercises what it is meant to: a conv and a linear layer, unstructured and
    structured zeros, declared below measured, the MAC-share cap binding, 16-bit claims verified."""
    r = record.read(RECORD)
    assert r.status == "ok" and r.eligible and r.claims_verified and r.accuracy == 1.0
    assert {layer.op for layer in r.layers} >= {"conv", "matmul"}
    weighted = [layer for layer in r.layers if layer.op in ("conv", "matmul")]
    assert all(layer.zeros > 0 for layer in weighted) and any(layer.structured_zeros > 0 for layer in weighted)
    assert {layer.op for layer in r.layers} >= {"reduction"}  # its pools cost accumulates
    d, m, e = r.declared, r.measured, r.effective
    assert 0 < d.structured_pruning < m.structured_pruning and 0 < d.unstructured_pruning < m.unstructured_pruning
    assert (d.weight_bits, d.activation_bits) == (16, 16) == (m.weight_bits, m.activation_bits)
    assert any(layer.activation_bits is not None and layer.activation_bits < 16 for layer in r.layers)
    assert e == d  # only what is declared is credited
    assert 0 < r.structured_mac_share < e.structured_pruning and r.score.ops_pruning == r.structured_mac_share
    assert r.score.params_term > 0 and r.score.ops_term > 0
    assert r.provenance.rules and r.provenance.scoring_version and r.provenance.isolation == "none"


def _golden_like() -> dict:
    return json.loads(RECORD.read_text(encoding="utf-8"))


def test_differences_name_every_field_that_changed():
    """The comparison is not vacuous: each kind of change is reported with both values; ignored
    fields and float noise below the tolerance are not."""
    expected = _golden_like()
    actual = json.loads(json.dumps(expected))
    assert differences(expected, actual) == []
    actual["score"]["total"] *= 1 + 1e-6
    actual["layers"][1]["zeros"] += 1
    actual["eligible"] = not actual["eligible"]
    actual["provenance"]["rules"]["accuracy_threshold"] = 0.5
    actual["provenance"]["scoring_version"] = "99"
    del actual["measured"]["weight_bits"]
    actual["new_field"] = 1
    actual["layers"].append(actual["layers"][0])
    actual["accuracy"] = 1  # an int where a float was
    actual["score"]["params_term"] *= 1 + 1e-12  # below the tolerance
    actual["timings"] = {"worker": 1e9}
    actual["provenance"]["created_at"] = "2000-01-01T00:00:00+00:00"
    actual["provenance"]["files"]["model.py"] = "0" * 64
    actual["provenance"]["packages"] = {"torch": "0"}
    actual["provenance"]["device"] = "cpu (64 threads)"
    problems = differences(expected, actual)
    fields = [p.split(":")[0] for p in problems]
    assert len(fields) == len(set(fields)), problems  # one line per field
    assert set(fields) == {"score.total", "layers[1].zeros", "eligible", "provenance.rules.accuracy_threshold",
                           "provenance.scoring_version", "measured.weight_bits", "new_field", "layers",
                           f"layers[{len(expected['layers'])}]", "accuracy"}, problems
    line = next(p for p in problems if p.startswith("layers[1].zeros"))
    zeros = expected["layers"][1]["zeros"]
    assert line == f"layers[1].zeros: expected {zeros}, actual {zeros + 1}"
    assert any(p.startswith("measured.weight_bits: expected 16, actual (missing)") for p in problems)


# -- records of an older harness ------------------------------------------------------------------------


def test_a_version_1_record_still_loads():
    """tests/golden/record-v1.json was written by the harness at record version 1 (commit 9c3886c^),
    on a submission with an FFT its counter did not know."""
    old = record.read(RECORD_V1)
    p = old.provenance
    assert (p.record_version, p.scoring_version) == (1, "1") and record.RECORD_VERSION > 1
    assert old.uncounted_ops == ["_fft_r2c"] and old.layers[0].op == "linear"
    assert old.structured_mac_share is None and old.score.ops_pruning == 0.0  # fields it did not have
    assert old.eligible and old.score.total == pytest.approx(8.566964285714286e-07, rel=1e-12)
    raw = json.loads(RECORD_V1.read_text(encoding="utf-8"))
    assert "structured_mac_share" not in raw and "ops_pruning" not in raw["score"]  # really as v1 wrote it


def test_old_and_current_records_load_and_rank_apart(tmp_path, capsys):
    """A version-1 record beside current ones: all load; made under other rules (scoring version 1,
    no checks), the v1 record is never ranked with them: the board lists the two sets of rules, and
    each set renders on its own, every page of it."""
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(RECORD_V1, results / "old-v1.json")
    shutil.copy(RECORD, results / "golden.json")
    rerun = _golden_like()  # a current record of the veterans, later and worse than their v1 one
    rerun.update(team="veterans", name="tiny-cnn-rerun")
    rerun["provenance"]["created_at"] = "2099-01-01T00:00:00.000+00:00"
    (results / "rerun.json").write_text(json.dumps(rerun), encoding="utf-8")

    entries = ranking.collect(results).entries
    assert len(entries) == 3
    versions = {e.record.name: e.record.provenance.record_version for e in entries}
    now = record.RECORD_VERSION
    assert versions == {"spectral-oracle": 1, "tiny-cnn": now, "tiny-cnn-rerun": now}
    current, old = ranking.rule_sets(entries)
    assert [e.record.name for e in old.entries] == ["spectral-oracle"]
    with pytest.raises(ranking.LeaderboardError, match="made under 2 different sets of rules") as err:
        ranking.build(results, load_rules())
    assert f"rules {old.ident}: 1 record" in str(err.value) and "scoring version 1" in str(err.value)

    board = ranking.build(results, load_rules(), current.ident)
    assert [(row.team, row.best.record.name) for row in board.ranked] == [("golden", "tiny-cnn"),
                                                                         ("veterans", "tiny-cnn-rerun")]
    assert board.notes[0] == f"1 record made under other rules is not shown (this board: rules {current.ident})"
    for ident, pages in ((current.ident, 2), (old.ident, 1)):
        out = tmp_path / f"board-{ident}"
        assert main(["leaderboard", "--results", str(results), "--out", str(out), "--rules", ident]) == 0
        said = capsys.readouterr()
        assert "skipped" not in said.err and f"{pages} evaluations read, 0 unreadable" in said.out
        assert len(list((out / "runs").glob("*.html"))) == pages
