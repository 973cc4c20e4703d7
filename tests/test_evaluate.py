"""End-to-end: the command line on generated data in both layouts, records, exit statuses, claims."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.cli import main
from harness.record import read
from harness.score import SCORING_VERSION

from .conftest import ORACLE, make_submission, stand_in_stages

CONSTANT = """
import torch
from torch import nn

class Constant(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 10)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3))) * 0 + torch.tensor([1.0] + [0.0] * 9)  # always class 0

def build_model():
    return Constant()
"""


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_oracle_is_eligible_through_both_stages(capsys, tmp_path, oracle, folder_data):
    """The one real pipeline of an eligible submission: both stages, the record on disk."""
    results = tmp_path / "results"
    code, rec = run_json(capsys, "evaluate", str(oracle), "--data", str(folder_data), "--results", str(results))
    assert code == 0
    assert rec["status"] == "ok" and rec["eligible"] and rec["claims_verified"]
    assert (rec["accuracy"], rec["correct"], rec["total"]) == (1.0, 100, 100)
    # fc; the two means over 32 x 8 pixels; the maximum of the two levels (an accumulate)
    assert rec["params"] == 20 and rec["macs"] == 10 + 2 * 32 * 8 + 1
    checks = {c["name"]: c for c in rec["checks"]}
    assert checks["flip"]["accuracy"] == checks["shift"]["accuracy"] == 1.0 and checks["flip"]["passed"]
    assert not checks["unseen"]["ran"] and "no CIFAR-10 training images" in checks["unseen"]["note"]
    prov = rec["provenance"]
    assert prov["dataset_sha256"] and prov["submission_sha256"] and set(prov["files"]) == {
        "model.py", "weights.pt", "submission.yaml"}
    assert prov["harness_version"] and prov["scoring_version"] == SCORING_VERSION and prov["device"].startswith("cpu")
    assert prov["packages"]["torch"] == prov["torch_version"] and prov["packages"]["python"]
    files = list(results.glob("*.json"))
    assert len(files) == 1 and read(files[0]).model_dump(mode="json") == rec


def test_both_data_layouts_give_the_same_grading(capsys, tmp_path, oracle, folder_data, batches_data, monkeypatch):
    judged = stand_in_stages(monkeypatch, answer=lambda labels: labels)
    for data in (folder_data, batches_data):
        code, rec = run_json(capsys, "evaluate", str(oracle), "--data", str(data), "--results", str(tmp_path / "r"))
        assert code == 0 and (rec["accuracy"], rec["correct"], rec["total"]) == (1.0, 100, 100) and rec["eligible"]
    assert len(judged) == 2


def test_low_accuracy_is_not_eligible(capsys, tmp_path, oracle, folder_data, monkeypatch):
    stand_in_stages(monkeypatch, answer=lambda labels: labels * 0)  # always class 0
    code, rec = run_json(capsys, "evaluate", str(oracle), "--data", str(folder_data), "--results", str(tmp_path / "r"))
    assert code == 1 and rec["accuracy"] == pytest.approx(0.1) and not rec["eligible"]
    assert "below 90%" in rec["reasons"][0]
    assert any("answers class 0 (airplane) for 100% of the test images" in w for w in rec["warnings"])


def test_the_worst_status_of_a_batch_is_its_exit_code(capsys, tmp_path, oracle, folder_data, monkeypatch):
    stand_in_stages(monkeypatch, answer=lambda labels: labels)
    broken = make_submission(tmp_path / "broken", ORACLE, manifest={"compression": {"weight_bits": 64}})
    code, recs = run_json(capsys, "evaluate", str(oracle), str(broken), "--data", str(folder_data),
                          "--results", str(tmp_path / "r"))
    assert code == 2 and [r["status"] for r in recs] == ["ok", "invalid"]
    assert "compression.weight_bits" in recs[1]["errors"][0] and recs[1]["team"] == "testers"
    assert len(list((tmp_path / "r").glob("*.json"))) == 2  # every one recorded


def test_claims_through_the_pipeline(capsys, tmp_path):
    quantised = """
import torch
from torch import nn
import torch.nn.utils.prune as prune

def build_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 10, bias=False))
    with torch.no_grad():
        for m in (net[0], net[4]):
            s = m.weight.abs().max() / 7
            m.weight.copy_((m.weight / s).round().clamp(-8, 7) * s)  # 4-bit weights
    prune.l1_unstructured(net[0], "weight", amount=0.5)
    return net
"""
    true = make_submission(tmp_path / "true", quantised, manifest={
        "compression": {"unstructured_pruning": 0.3, "weight_bits": 4}})
    over_bits = make_submission(tmp_path / "bits", quantised, manifest={"compression": {"weight_bits": 2}})
    over_prune = make_submission(tmp_path / "prune", quantised, manifest={"compression": {"unstructured_pruning": 0.9}})
    half = make_submission(tmp_path / "half", CONSTANT, manifest={"compression": {"weight_bits": 16,
                                                                                 "activation_bits": 16}})
    code, recs = run_json(capsys, "profile", str(true), str(over_bits), str(over_prune), str(half))
    assert code == 1
    t, b, p, h = recs
    assert t["claims_verified"] and t["measured"]["weight_bits"] == 4
    assert t["measured"]["unstructured_pruning"] >= 0.3 and t["effective"]["unstructured_pruning"] == 0.3
    assert not b["claims_verified"] and "weight_bits" in b["claim_failures"][0]
    assert not p["claims_verified"] and "unstructured_pruning" in p["claim_failures"][0]
    assert h["claims_verified"] and h["measured"]["weight_bits"] == 16  # float32 weights, rounded to float16
    assert "accuracy" not in t and "flip" not in t and "checks" not in t  # profile has no accuracy fields
    assert t["score"]["total"] == pytest.approx(t["score"]["params_term"] + t["score"]["ops_term"])


def test_float32_is_pinned_to_ieee_in_the_measuring_stage(tmp_path):
    """Whatever the submission's code set in stage 1, stage 2 computes IEEE float32 (no TF32) with
    deterministic cuDNN: it pins the flags itself before it runs the graph. The flags are torch's
    dynamic attributes, which pytest's monkeypatch cannot restore: they are saved and set back here."""
    torch = pytest.importorskip("torch")
    if not hasattr(torch.backends.cudnn, "conv"):
        pytest.skip("torch < 2.9 has only the legacy TF32 flags")
    from harness.jobs import MeasureJob
    from harness.measure import __main__ as stage2

    from .conftest import exported

    b = torch.backends
    precisions = (b.cudnn.conv, b.cudnn.rnn, b.cuda.matmul)
    saved = ([f.fp32_precision for f in precisions], b.cudnn.benchmark, b.cudnn.deterministic)
    try:
        for flags in precisions:
            flags.fp32_precision = "tf32"
        b.cudnn.benchmark, b.cudnn.deterministic = True, False
        graph = exported(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, 10)), tmp_path)
        result = stage2.run(MeasureJob(graph=str(graph), out=str(tmp_path), device="cpu"))
        seen = (b.cudnn.conv.fp32_precision, b.cuda.matmul.fp32_precision, b.cudnn.deterministic, b.cudnn.benchmark)
    finally:
        for flags, value in zip(precisions, saved[0], strict=True):
            flags.fp32_precision = value
        b.cudnn.benchmark, b.cudnn.deterministic = saved[1], saved[2]
    assert seen == ("ieee", "ieee", True, False) and result.params == 30_730
    assert result.packages["torch"] == torch.__version__ and set(stage2.PACKAGES) <= set(result.packages)


def test_sibling_imports_and_human_output(capsys, tmp_path):
    sub = make_submission(tmp_path / "sib", "from blocks import build\ndef build_model():\n    return build()\n",
                          extra={"blocks.py": "from torch import nn\ndef build():\n"
                                 "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(3600, 10))\n"})
    assert main(["profile", str(sub)]) == 0  # built from the sibling module, exported, claims verified
    out = capsys.readouterr().out
    assert "testers/sib  (" in out and "status: ok" in out and "weights w = 36,122" in out


def test_cli_subprocess_help_is_light_and_exit_codes(tmp_path, oracle):
    probe = "import sys, harness.cli as c; c._parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"
    assert subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True).returncode == 0
    bad = subprocess.run([sys.executable, "-m", "harness", "evaluate", str(oracle), "--data", str(tmp_path / "none")],
                         capture_output=True, text=True)
    assert bad.returncode == 3 and "no such file" in bad.stderr and "Traceback" not in bad.stderr
    prof = subprocess.run([sys.executable, "-m", "harness", "profile", str(oracle)], capture_output=True, text=True)
    assert prof.returncode == 0 and "score =" in prof.stdout and "layer" in prof.stdout


def test_an_answer_that_depends_on_the_rest_of_the_batch_is_refused(capsys, tmp_path, folder_data):
    """A statistic of the batch (here its summed image) makes each answer depend on the others: 16
    images checked in a batch of their own and in the predicted batches of 50 sum to totals about 3
    times apart, whatever the order, and the summed image moves each class's logit differently."""
    batchwise = """
import torch
from torch import nn

class Batchwise(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3072, 10)

    def forward(self, x):  # each image plus the batch's total, as a careless test-time statistic would
        return self.fc((x + x.sum(0, keepdim=True)).flatten(1))

def build_model():
    return Batchwise()
"""
    sub = make_submission(tmp_path / "batchwise", batchwise)
    code, rec = run_json(capsys, "evaluate", str(sub), "--data", str(folder_data), "--results", str(tmp_path / "r"),
                         "--config", str(_rules(tmp_path, batch_size=50)))
    assert code == 3 and rec["status"] == "error" and not rec["eligible"]
    assert "depends on the other images of its batch" in rec["errors"][0]


def _rules(tmp_path, **values):
    import yaml

    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_a_model_that_does_not_export_is_told_where(capsys, tmp_path):
    branchy = """
from torch import nn

class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3072, 10)

    def forward(self, x):
        if x.mean().item() > 0.5:  # a Python branch on a tensor's value
            x = x * 2
        return self.fc(x.flatten(1))

def build_model():
    return Branchy()
"""
    sub = make_submission(tmp_path / "branchy", branchy)
    code, rec = run_json(capsys, "profile", str(sub))
    assert code == 2 and rec["status"] == "invalid"
    message = rec["errors"][0]
    assert "does not export with torch.export" in message
    assert "at model.py:10 (forward) `if x.mean().item() > 0.5:" in message  # the student's own line
    assert str(sub) in rec["traceback"] and "/submission/" not in message  # host paths, not the sandbox's


def test_a_roster_binds_teams_to_folders_so_no_manifest_files_under_another_team(tmp_path, oracle):
    """With a roster in the config, a submission's team is the one whose folder holds it; a manifest
    that names another team is overruled (and told so); a folder outside the roster is refused."""
    import shutil

    from harness.board import ranking
    from harness.config import load_rules, with_overrides
    from harness.judge.evaluate import judge
    from harness.record import write

    cfg = tmp_path / "course" / "rules.yaml"
    cfg.parent.mkdir()
    cfg.write_text("roster:\n  tigers: inbox/tigers\n  moles: [inbox/moles, late/moles]\n")
    rules = with_overrides(load_rules(cfg), isolation="none")
    assert rules.roster["moles"] == [str(tmp_path / "course" / "inbox" / "moles"),
                                     str(tmp_path / "course" / "late" / "moles")]
    spoof = shutil.copytree(oracle, tmp_path / "course" / "late" / "moles" / "v2")  # manifest: team testers
    rec = judge(spoof, None, rules, "cpu")
    assert rec.status == "ok" and rec.team == "moles" and rec.provenance.team_from == "roster"
    assert ("submission.yaml names team 'testers', but the roster files this folder under team 'moles', so the "
            "record is filed under 'moles'") in rec.warnings
    stray = judge(shutil.copytree(oracle, tmp_path / "course" / "inbox" / "nobody"), None, rules, "cpu")
    assert stray.status == "invalid" and "is in none of the team folders of the roster" in stray.errors[0]
    broken = shutil.copytree(oracle, tmp_path / "course" / "inbox" / "tigers" / "broken")
    (broken / "submission.yaml").write_text("team: moles\nmodel: [\n")
    assert judge(broken, None, rules, "cpu").team == "tigers"  # even an invalid manifest names no team

    results = tmp_path / "results"
    for r in (rec, judge(oracle, None, with_overrides(load_rules(), isolation="none"), "cpu")):
        write(r.model_copy(update={"kind": "evaluate", "accuracy": 0.95, "eligible": True}), results)
    notes = ranking.build(results, load_rules(), ranking.rule_sets(ranking.collect(results).entries)[0].ident).notes
    assert "teams as their submission.yaml names them: no roster binds a team to its folder" in notes
