"""`evaluate --skip-evaluated`: which earlier records an evaluation repeats.

A directory is skipped when `--results` holds a record of kind `evaluate` of the same files (the
sha256 over their paths and contents, wherever the directory lies) made with the same test set
(its sha256), the same scoring version and the same recorded rules; anything else is evaluated
again. The decision is `harness.judge.evaluate.evaluated` (tested directly, in milliseconds) and
`harness.cli._identity` (the directory's sha256, which must be the one the judge records: one real
evaluation checks it). The other command-line cases replace both stages by conftest's stand-in,
so that everything the parent decides runs for real, without the seconds a model costs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from harness import record
from harness.cli import main
from harness.config import load_rules
from harness.data import load_test
from harness.judge.evaluate import evaluated
from harness.score import SCORING_VERSION

from .conftest import ORACLE, class_images, make_submission, stand_in_stages, write_folder


def records(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def evaluate(capsys, sub, data, results, *extra) -> tuple[int, str]:
    """`evaluate --skip-evaluated` as an instructor types it (no --json): what it printed, the summary
    (stdout) and the verdict and skip lines (stderr)."""
    code = main(["evaluate", *map(str, sub if isinstance(sub, list) else [sub]), "--data", str(data),
                 "--results", str(results), "--isolation", "none", "--device", "cpu", "--skip-evaluated", *extra])
    said = capsys.readouterr()
    return code, said.out + said.err


# -- one real evaluation, then the same command ------------------------------------------------------------


def test_a_real_evaluation_is_skipped_by_the_same_command(capsys, tmp_path, oracle, folder_data):
    """The judge's recorded sha256 is the identity the command line computes: the same command skips
    the directory, and so does a copy of its files elsewhere; the exit status is the earlier record's."""
    results = tmp_path / "results"
    code, err = evaluate(capsys, oracle, folder_data, results)
    assert code == 0 and "1 evaluated, 0 skipped" in err, err
    [first] = records(results)
    rec = record.read(first)
    assert rec.status == "ok" and rec.eligible and rec.provenance.submission_sha256

    copy = shutil.copytree(oracle, tmp_path / "elsewhere" / "oracle-copy")
    code, err = evaluate(capsys, [oracle, copy], folder_data, results)
    assert code == 0, err
    assert records(results) == [first], "evaluated again"
    assert f"skipped {oracle}: evaluated already ({first.name})" in err
    assert f"skipped {copy}: evaluated already ({first.name})" in err
    assert "0 evaluated, 2 skipped (evaluated already with these files and rules)" in err


# -- what evaluates again (stages stood in for) ------------------------------------------------------------


@pytest.fixture
def earlier(monkeypatch, capsys, tmp_path, folder_data):
    """An oracle evaluated once (stand-in stages): (submission, data, results, the record's path, judged)."""
    judged = stand_in_stages(monkeypatch, answer=lambda labels: labels)
    sub = make_submission(tmp_path / "oracle", ORACLE)
    results = tmp_path / "results"
    code, err = evaluate(capsys, sub, folder_data, results)
    assert code == 0 and len(judged) == 1 and len(records(results)) == 1, err
    return sub, folder_data, results, records(results)[0], judged


def test_the_same_command_skips(capsys, earlier):
    sub, data, results, first, judged = earlier
    code, err = evaluate(capsys, sub, data, results)
    assert code == 0 and len(judged) == 1 and records(results) == [first]
    assert "0 evaluated, 1 skipped" in err


def test_without_the_option_everything_is_evaluated_again(capsys, earlier):
    sub, data, results, first, judged = earlier
    assert main(["evaluate", str(sub), "--data", str(data), "--results", str(results), "--isolation", "none",
                 "--json"]) == 0
    capsys.readouterr()
    assert len(judged) == 2 and len(records(results)) == 2


@pytest.mark.parametrize("rules", [{"accuracy_threshold": 0.8}, {"reference_params": 1e6}, {"reference_macs": 1e9},
                                   {"flip_gap": 0.2}, {"flip_images": 50}, {"unseen_margin": 0.1}, {"probe_images": 8}],
                         ids=lambda r: next(iter(r)))
def test_other_rules_evaluate_again(capsys, tmp_path, earlier, rules):
    """A config that changes a rule the record depends on repeats the evaluation; the new record is then
    found under those rules, and the old one still under the old rules."""
    sub, data, results, first, judged = earlier
    config = tmp_path / "rules.yaml"
    config.write_text(yaml.safe_dump(rules))
    code, err = evaluate(capsys, sub, data, results, "--config", str(config))
    assert len(judged) == 2 and len(records(results)) == 2 and "1 evaluated, 0 skipped" in err, err
    for again in (["--config", str(config)], []):  # each record is found under its own rules
        code, err = evaluate(capsys, sub, data, results, *again)
        assert "0 evaluated, 1 skipped" in err, err
    assert len(judged) == 2 and len(records(results)) == 2


def test_another_limit_on_the_command_line_evaluates_again(capsys, earlier):
    """The stages' limits are recorded rules too: a record made under a shorter timeout (which may
    have ended it) does not stand for one under a longer one."""
    sub, data, results, first, judged = earlier
    code, err = evaluate(capsys, sub, data, results, "--timeout", "900")
    assert len(judged) == 2 and "1 evaluated, 0 skipped" in err, err


def test_another_test_set_evaluates_again(capsys, tmp_path, earlier):
    sub, data, results, first, judged = earlier
    images, labels = class_images()
    images[:, :, 16:, :] = 3  # the same classes, other pixels
    other = write_folder(tmp_path / "other-data", images, labels)
    assert load_test(other).sha256 != load_test(data).sha256
    code, err = evaluate(capsys, sub, other, results)
    assert len(judged) == 2 and len(records(results)) == 2 and "1 evaluated, 0 skipped" in err, err


@pytest.mark.parametrize("change", ["model.py", "submission.yaml", "weights.pt", "a new file"])
def test_a_changed_submission_evaluates_again(capsys, earlier, change):
    sub, data, results, first, judged = earlier
    if change == "a new file":
        (sub / "notes.txt").write_text("trained longer\n")
    elif change == "weights.pt":
        import torch

        state = torch.load(sub / "weights.pt", weights_only=True)
        state["fc.bias"] = state["fc.bias"] + 1.0
        torch.save(state, sub / "weights.pt")
    else:
        path = sub / change
        path.write_text(path.read_text() + "\n# edited\n")
    code, err = evaluate(capsys, sub, data, results)
    assert len(judged) == 2 and len(records(results)) == 2 and "1 evaluated, 0 skipped" in err, err


def test_a_batch_evaluates_only_what_it_has_not(capsys, tmp_path, earlier):
    sub, data, results, first, judged = earlier
    new = make_submission(tmp_path / "second", ORACLE.replace("Reads the grey", "Reads, again, the grey"))
    code, err = evaluate(capsys, [sub, new], data, results)
    assert code == 0 and judged[1:] == [new] and len(records(results)) == 2
    assert "1 evaluated, 1 skipped" in err


# -- the decision itself: harness.judge.evaluate.evaluated ------------------------------------------------


def _variant(first: Path, folder: Path, change) -> Path:
    """`first` rewritten into `folder` with `change(record_as_json)` applied."""
    doc = json.loads(first.read_text(encoding="utf-8"))
    change(doc)
    folder.mkdir(exist_ok=True)
    out = folder / "variant.json"
    out.write_text(json.dumps(doc), encoding="utf-8")
    return out


def _set(path: str, value):
    def change(doc):
        *parents, last = path.split(".")
        for key in parents:
            doc = doc[key]
        if value is _DELETE:
            del doc[last]
        else:
            doc[last] = value
    return change


_DELETE = object()


def test_the_decision_finds_the_same_evaluation(tmp_path, earlier):
    sub, data, results, first, judged = earlier
    sha = record.read(first).provenance.submission_sha256
    assert evaluated(results, load_test(data), load_rules()) == {sha: first}
    (results / "garbled.json").write_text("{ not json")  # unreadable records are left aside
    (results / "other.json").write_text(json.dumps({"kind": "evaluate"}))
    assert evaluated(results, load_test(data), load_rules()) == {sha: first}
    assert evaluated(tmp_path / "nothing-here", load_test(data), load_rules()) == {}


@pytest.mark.parametrize(("field", "value"), [
    ("kind", "profile"),  # profile records have no accuracy
    ("provenance.submission_sha256", None),  # an invalid submission's record, made before hashing
    ("provenance.dataset_sha256", "0" * 64),
    ("provenance.scoring_version", str(int(SCORING_VERSION) - 1)),
    ("provenance.rules.accuracy_threshold", 0.5),
    ("provenance.rules.reference_params", 1.0),
    ("provenance.rules.reference_macs", 1.0),
    ("provenance.rules.flip_images", 10.0),
    ("provenance.rules.shift_gap", 0.5),
    ("provenance.unseen_sha256", "0" * 64),  # another training set sampled
    ("provenance.private_sha256", "0" * 64),  # other private images
    ("provenance.rules.flip_gap", 0.5),
    ("provenance.rules.probe_images", 1.0),
    ("provenance.rules.memory_mb", 64.0),
    ("provenance.rules.probe_images", _DELETE),  # a record of a harness that did not record the rule
    ("provenance.rules", {}),
], ids=lambda v: "deleted" if v is _DELETE else "another" if isinstance(v, str) and len(v) == 64
   else v.removeprefix("provenance.") if isinstance(v, str) else repr(v))
def test_the_decision_repeats_what_differs(tmp_path, earlier, field, value):
    sub, data, results, first, judged = earlier
    folder = tmp_path / "variants"
    _variant(first, folder, _set(field, value))
    assert evaluated(folder, load_test(data), load_rules()) == {}
    same = tmp_path / "same"
    path = _variant(first, same, lambda doc: None)  # the control: unchanged, it is found
    assert evaluated(same, load_test(data), load_rules()) == {record.read(first).provenance.submission_sha256: path}


def test_the_decision_ignores_what_does_not_matter(tmp_path, earlier):
    """Where, when and by which harness release it ran do not make an evaluation another one."""
    sub, data, results, first, judged = earlier
    folder = tmp_path / "variants"
    for field, value in [("directory", "/elsewhere"), ("provenance.created_at", "2000-01-01T00:00:00+00:00"),
                         ("provenance.device", "cuda (H100)"), ("provenance.harness_version", "9.9"),
                         ("provenance.isolation", "bwrap")]:
        _variant(first, folder, _set(field, value))
        found = evaluated(folder, load_test(data), load_rules())
        assert list(found) == [record.read(first).provenance.submission_sha256], field
