"""Messages that say what to change: the usual mistakes of a student, each with its hint."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from harness.errors import RunError, SubmissionError
from harness.export import loader
from harness.stage import failure

MODEL = """
from torch import nn

def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 10))
"""


def submission(tmp_path, state, code=MODEL):
    (tmp_path / "model.py").write_text(code)
    torch.save(state, tmp_path / "weights.pt")
    return tmp_path


def good_state():
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 10)).state_dict()


def test_weights_saved_from_data_parallel_get_the_way_to_strip_the_prefix(tmp_path):
    state = {f"module.{k}": v for k, v in good_state().items()}
    with pytest.raises(SubmissionError, match=r"'module\.' prefix of nn\.DataParallel: save model\.module"):
        loader.build(submission(tmp_path, state), "model.py", "build_model", "weights.pt")


def test_weights_that_do_not_match_the_model_name_the_keys(tmp_path):
    state = {"1.weight": torch.zeros(10, 3072), "extra": torch.zeros(1)}
    with pytest.raises(SubmissionError, match=r"missing keys: 1\.bias; unexpected keys: extra"):
        loader.build(submission(tmp_path, state), "model.py", "build_model", "weights.pt")


def test_a_training_checkpoint_gets_told_to_save_its_state_dict_alone(tmp_path):
    ckpt = {"epoch": 30, "state_dict": good_state(), "best_acc": 0.91}
    with pytest.raises(SubmissionError, match=r"training checkpoint: .*torch\.save\(checkpoint\['state_dict'\]"):
        loader.build(submission(tmp_path, ckpt), "model.py", "build_model", "weights.pt")


def test_an_exception_in_the_students_code_names_their_file_and_line(tmp_path):
    code = MODEL.replace("    return nn.Sequential", "    width = 3072 // 0\n    return nn.Sequential")
    with pytest.raises(RunError, match=r"ZeroDivisionError: integer division or modulo by zero "
                                       r"at model\.py:5 \(build_model\) `width = 3072 // 0`"):
        loader.build(submission(tmp_path, good_state(), code), "model.py", "build_model", "weights.pt")


def test_nested_escapes_and_carriage_returns_never_survive():
    """An escape hidden inside another reappears when the outer one is removed: removed until none is
    left; a carriage return (which lets a line write over the receipt) and other controls go too."""
    nested = "no model\x1b[\x1b[\x1b[2J2J2J\r\x1b[8mhidden\x07\x9b2J"
    assert failure(ValueError(nested)).message == "ValueError: no modelhidden2J"


def test_no_terminal_escapes_reach_a_record():
    err = RuntimeError("\x1b[1mWeights only load failed.\x1b[0m Re-running \x1b[31mtorch.load\x1b[0m")
    failed = failure(err)
    assert "\x1b" not in failed.message and "\x1b" not in failed.traceback
    assert failed.message == "RuntimeError: Weights only load failed. Re-running torch.load"


def test_help_names_the_contract_the_formula_and_the_exit_codes():
    for argv in ([], ["evaluate"], ["profile"]):
        text = subprocess.run([sys.executable, "-m", "harness", *argv, "--help"], capture_output=True,
                              text=True).stdout
        assert "submissions/README.md" in text and "max(q_w,q_a)" in text and "3 error while running" in text


def test_a_0_255_normalisation_and_a_one_class_model_are_pointed_out(capsys, tmp_path, folder_data, monkeypatch):
    import json

    from harness.cli import main

    from .conftest import make_submission, stand_in_stages

    sub = make_submission(tmp_path / "s", MODEL, manifest={"model": {"normalize": {
        "mean": [125.3, 123.0, 113.9], "std": [63.0, 62.1, 66.7]}}})
    stand_in_stages(monkeypatch, answer=lambda labels: labels * 0 + 3)  # always class 3
    code = main(["evaluate", str(sub), "--data", str(folder_data), "--results", str(tmp_path / "r"), "--json"])
    rec = json.loads(capsys.readouterr().out)
    assert code == 1 and rec["accuracy"] == pytest.approx(0.1)
    assert any("look like a 0-255 scale" in w and "divide both by 255" in w for w in rec["warnings"])
    assert any("answers class 3 (cat) for 100% of the test images" in w for w in rec["warnings"])


def test_stage_2_reports_its_progress_to_the_parent(tmp_path, oracle, folder_data):
    """The bar of `evaluate` on a terminal: (images done, total) after every batch, up to the test
    images and the checks' (mirrored and shifted) ones."""
    from harness.config import load_rules, with_overrides
    from harness.data import load_test
    from harness.judge.evaluate import judge

    seen = []
    test = load_test(folder_data)
    rules = with_overrides(load_rules(), isolation="none", batch_size=30, flip_images=20, shift_images=20)
    rec = judge(oracle, test, rules, "cpu", progress=lambda done, total: seen.append((done, total)))
    assert rec.status == "ok" and seen and seen[-1] == (140, 140)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and all(t == 140 for _, t in seen)


def test_guidance_says_what_may_be_declared_what_bits_would_score_and_why_p_s_measures_nothing():
    from harness.judge.report import render
    from harness.record import Compression, Provenance, Record, Score
    from harness.score import Reference, most_to_declare, what_if

    measured = Compression(structured_pruning=0.0, unstructured_pruning=0.69926, weight_bits=8, activation_bits=8)
    assert most_to_declare(measured).unstructured_pruning == 0.6992  # rounded down: it verifies
    rows = what_if(1_000_000, 100_000_000, measured, 0.0, Reference(params=5.6e6, macs=2.8e8))
    # 4 bits: (1-0.6992)*(4/32)*1e6/5.6e6 + (4/32)*1e8/2.8e8
    assert [b for b, _ in rows] == [4, 2] and rows[0][1] == pytest.approx(0.3008 * 0.125 / 5.6 + 0.125 / 2.8)
    declared = Compression(structured_pruning=0.3, weight_bits=8, activation_bits=8)
    rec = Record(team="t", name="n", directory="d", status="ok", params=1_000_000, macs=100_000_000,
                 structured_mac_share=0.0, declared=declared, measured=measured,
                 effective=Compression(weight_bits=8, activation_bits=8), score=Score(params_term=0, ops_term=0,
                                                                                       total=0),
                 claim_failures=["structured_pruning: declared 0.3000, measured only 0.0000"],
                 provenance=Provenance(harness_version="t", scoring_version="2", created_at="now",
                                       rules={"reference_params": 5.6e6, "reference_macs": 2.8e8}))
    text = render(rec)
    assert "the most you may declare: structured_pruning 0.0000, unstructured_pruning 0.6992" in text
    assert "what if (hypothetical, NOT verified" in text and "4 bits 0.0514" in text
    assert "channels removed from the architecture are already absent from w and f" in text


def test_profile_with_data_measures_on_real_images_and_predicts_nothing(capsys, oracle, folder_data):
    import json

    from harness.cli import main

    assert main(["profile", str(oracle), "--data", str(folder_data), "--isolation", "none", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["status"] == "ok" and rec["kind"] == "profile" and rec["provenance"]["dataset_sha256"]
    assert "accuracy" not in rec and rec["timings"].get("inference") is None  # probe images only


def test_a_model_that_halves_itself_gets_a_word_on_dtype(capsys, tmp_path):
    import json

    from harness.cli import main

    code = MODEL.replace("return nn.Sequential(nn.Flatten(), nn.Linear(3072, 10))", "return Half()") + """
class Half(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3072, 10)

    def forward(self, x):
        return self.fc(x.flatten(1).half())
"""
    folder = submission(tmp_path, {"fc.weight": torch.zeros(10, 3072), "fc.bias": torch.zeros(10)}, code)
    (folder / "submission.yaml").write_text("team: t\n")
    assert main(["profile", str(folder), "--isolation", "none", "--json"]) == 3
    rec = json.loads(capsys.readouterr().out)
    error = rec["errors"][0]
    assert "got Half and Float" in error
    assert "feeds float32 images" in error and "declare weight_bits and activation_bits 16" in error
