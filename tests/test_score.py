"""Score arithmetic (scoring version 2) and claim verification."""

from __future__ import annotations

import math

import pytest
import yaml

from harness import score as score_module
from harness.config import load_rules, with_overrides
from harness.record import Compression
from harness.score import RESNET18_MACS, RESNET18_PARAMS, Reference, reference_score, score, verify

RULES = load_rules()
REF = Reference.of(RULES)


def c(p_s=0.0, p_u=0.0, q_w=32, q_a=32) -> Compression:
    return Compression(structured_pruning=p_s, unstructured_pruning=p_u, weight_bits=q_w, activation_bits=q_a)


def test_resnet18_half_precision_is_the_reference():
    s = score(RESNET18_PARAMS, RESNET18_MACS, c(q_w=16, q_a=16), 0.0, REF)
    assert s.params_term == pytest.approx(RESNET18_PARAMS / 2 / 5.6e6) == pytest.approx(0.99725, abs=1e-5)
    assert s.ops_term == pytest.approx(RESNET18_MACS / 2 / 2.8e8) == pytest.approx(0.99228, abs=1e-5)
    assert s.total == pytest.approx(1.98953, abs=1e-5) == reference_score(REF)


def test_terms_by_hand():
    s = score(1_000_000, 50_000_000, c(0.2, 0.3, 4, 8), 1.0, REF)
    assert s.params_term == pytest.approx((1 - 0.5) * (4 / 32) * 1e6 / 5.6e6)
    assert s.ops_term == pytest.approx((1 - 0.2) * (8 / 32) * 5e7 / 2.8e8)
    assert s.total == pytest.approx(s.params_term + s.ops_term)


def test_structured_pruning_on_the_mac_term_is_capped_by_the_macs_it_removes():
    """Zero channels that carry 5 % of the MACs earn at most 5 % on the MAC term, whatever p_s is."""
    s = score(1_000_000, 50_000_000, c(0.6, 0.0, 32, 32), 0.05, REF)
    assert s.ops_pruning == 0.05
    assert s.ops_term == pytest.approx(0.95 * 5e7 / 2.8e8)
    assert s.params_term == pytest.approx(0.4 * 1e6 / 5.6e6)  # the weight term keeps p_s


def test_padding_with_zero_weights_gains_nothing():
    w, f, zeros = 1_000_000, 50_000_000, 4_000_000  # 4 M zero weights in channels that carry no MACs
    honest = score(w, f, c(), 0.0, REF).total
    padded = score(w + zeros, f, c(zeros / (w + zeros)), 0.0, REF).total
    assert padded == pytest.approx(honest)


def test_constants_come_from_the_rules():
    rules = with_overrides(RULES, reference_params=100, reference_macs=100)
    s = score(100, 200, c(), 0.0, Reference.of(rules))
    assert (s.params_term, s.ops_term) == (1.0, 2.0)


DECLARED = c(0.1, 0.4, 8, 8)


def test_true_claims_pass_and_credit_the_declaration():
    eff, failures = verify(DECLARED, c(0.15, 0.5, 4, 8))
    assert failures == []
    assert eff == DECLARED  # only what is declared is credited


def test_overclaimed_pruning_fails_and_credits_the_measurement():
    eff, failures = verify(DECLARED, c(0.1, 0.2, 8, 8))
    assert len(failures) == 1 and "unstructured_pruning" in failures[0]
    assert eff.unstructured_pruning == 0.2


def test_overclaimed_bits_fail_and_credit_the_measurement():
    eff, failures = verify(DECLARED, c(0.1, 0.4, 32, 16))
    assert len(failures) == 2
    assert (eff.weight_bits, eff.activation_bits) == (32, 16)


# -- the score table: the formula pinned by hand-computed rows ------------------------------------------
#
# Each row: (case, w, f, (p_s, p_u, q_w, q_a), structured_mac_share) -> (params_term, ops_term, total,
# ops_pruning), worked out by hand from harness/score.py (scoring version 2) with W_ref = 5.6e6,
# F_ref = 2.8e8:
#
#   ops_pruning = min(p_s, share)   (p_s when share is None: a record that did not measure it)
#   params_term = [1 - (p_s + p_u)] * (q_w / 32) * w / W_ref
#   ops_term    = (1 - ops_pruning) * (max(q_w, q_a) / 32) * f / F_ref
#
# The rows are pinned to a relative 1e-12 AND to the scoring version they were made for. Changing the
# formula without bumping SCORING_VERSION fails the rows; bumping the version without recomputing the
# table (and TABLE_VERSION) fails test_the_table_is_for_this_scoring_version. A new formula needs both:
# new numbers worked out by hand, and a new version (records made under the old one are then
# re-evaluated by --skip-evaluated, and the leaderboard shows the version of each).
# Version 3 changed the cost model (how w and f are counted: harness/ops.py), not the formula:
# the rows, which start from w and f, were checked again and hold unchanged.
TABLE_VERSION = "3"
REFERENCES = Reference(params=5.6e6, macs=2.8e8)  # whatever the config says
W, F = 5_600_000, 280_000_000  # w = W_ref, f = F_ref: the terms are the factors themselves
SCORE_TABLE = [
    # float32, nothing pruned: 1 * 1 * 1.12e6/5.6e6 = 0.2; 1 * 1 * 5.6e7/2.8e8 = 0.2
    ("float32", 1_120_000, 56_000_000, (0.0, 0.0, 32, 32), 0.0, (0.2, 0.2, 0.4, 0.0)),
    # the CIFAR ResNet18 in float16: 0.5 * 11,169,162 / 5.6e6 = 5,584,581 / 5,600,000 = 0.997246607142857...;
    # 0.5 * 555,676,672 / 2.8e8 = 277,838,336 / 280,000,000 = 0.9922797714285714...; sum 1.98952637857142857
    ("resnet18 float16", 11_169_162, 555_676_672, (0.0, 0.0, 16, 16), 0.0,
     (5_584_581 / 5_600_000, 277_838_336 / 280_000_000, 1.98952637857142857, 0.0)),
    # 8/8 bits at w = W_ref / 2, f = F_ref / 2: (8/32) * 0.5 = 0.125 each
    ("w8a8", W // 2, F // 2, (0.0, 0.0, 8, 8), 0.0, (0.125, 0.125, 0.25, 0.0)),
    # 4-bit weights, 8-bit activations: weight term (4/32) * 0.5 = 0.0625; the MAC term takes the wider
    # of the two, (8/32) * 0.5 = 0.125
    ("w4a8", W // 2, F // 2, (0.0, 0.0, 4, 8), 0.0, (0.0625, 0.125, 0.1875, 0.0)),
    # 8-bit weights, 4-bit activations: (8/32) * 0.5 = 0.125 on both terms (max(8, 4) = 8)
    ("w8a4", W // 2, F // 2, (0.0, 0.0, 8, 4), 0.0, (0.125, 0.125, 0.25, 0.0)),
    # unstructured 50 % at 16 bits: weights (1 - 0.5) * 0.5 = 0.25; MACs not reduced: 1 * 0.5 = 0.5
    ("unstructured 50%, 16 bit", W, F, (0.0, 0.5, 16, 16), 0.0, (0.25, 0.5, 0.75, 0.0)),
    # structured 30 % whose zero channels carry 40 % of f (cap not binding): 0.7 * 0.5 = 0.35 on both
    ("structured 30%, share 0.4", W, F, (0.3, 0.0, 16, 16), 0.4, (0.35, 0.35, 0.7, 0.3)),
    # the same 30 % in channels that carry 10 % of f (the cap binds): weights 0.7 * 0.5 = 0.35,
    # MACs (1 - 0.1) * 0.5 = 0.45
    ("structured 30%, share 0.1 (capped)", W, F, (0.3, 0.0, 16, 16), 0.1, (0.35, 0.45, 0.8, 0.1)),
    # zero channels that carry no MACs at all: weights 0.5 * 0.2 = 0.1, MACs 1 * 0.2 = 0.2
    ("structured 50%, share 0 (capped to nothing)", 1_120_000, 56_000_000, (0.5, 0.0, 32, 32), 0.0,
     (0.1, 0.2, 0.3, 0.0)),
    # both prunings at 8 bits: weights (1 - 0.5) * 0.25 * 0.2 = 0.025; MACs (1 - min(0.2, 0.25)) * 0.25 * 0.2
    # = 0.8 * 0.05 = 0.04
    ("structured 20% + unstructured 30%, w8a8", 1_120_000, 56_000_000, (0.2, 0.3, 8, 8), 0.25,
     (0.025, 0.04, 0.065, 0.2)),
    # share unknown (None, records of version 1): p_s credited in full, 0.8 * 0.2 = 0.16 on both
    ("structured 20%, share None", 1_120_000, 56_000_000, (0.2, 0.0, 32, 32), None, (0.16, 0.16, 0.32, 0.2)),
]


def test_the_table_is_for_this_scoring_version():
    assert score_module.SCORING_VERSION == TABLE_VERSION, (
        f"SCORING_VERSION is {score_module.SCORING_VERSION!r} but SCORE_TABLE was computed for {TABLE_VERSION!r}: "
        "the scoring rule changed: recompute the table's rows by hand from harness/score.py and set TABLE_VERSION")


@pytest.mark.parametrize(("case", "w", "f", "compression", "share", "expected"), SCORE_TABLE,
                         ids=[row[0] for row in SCORE_TABLE])
def test_score_table(case, w, f, compression, share, expected):
    s = score(w, f, c(*compression), share, REFERENCES)
    got = (s.params_term, s.ops_term, s.total, s.ops_pruning)
    names = ("params_term", "ops_term", "total", "ops_pruning")
    wrong = [f"{n}: expected {e!r}, got {g!r}" for n, e, g in zip(names, expected, got, strict=True)
             if not math.isclose(g, e, rel_tol=1e-12, abs_tol=0.0)]
    assert not wrong, (f"{case}: the score differs from the table of scoring version {TABLE_VERSION} ("
                       + "; ".join(wrong) + "): if the formula changed on purpose, bump SCORING_VERSION in "
                       "harness/score.py and recompute the table")


def test_the_table_covers_what_it_claims():
    """float, 16, 8 and 4 bits, both prunings, the cap binding and not binding, a None share."""
    rows = [(comp, share) for _, _, _, comp, share, _ in SCORE_TABLE]
    assert {comp[2] for comp, _ in rows} >= {32, 16, 8, 4} and any(comp[2] != comp[3] for comp, _ in rows)
    assert any(comp[1] > 0 for comp, _ in rows) and any(comp[0] > 0 and comp[1] > 0 for comp, _ in rows)
    assert any(share is not None and 0 < share < comp[0] for comp, share in rows)  # the cap binds
    assert any(share is not None and share > comp[0] > 0 for comp, share in rows)  # it does not
    assert any(share is None for _, share in rows)


ADVISED = """
import torch
from torch import nn


def build_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    with torch.no_grad():
        for m in model:
            if not isinstance(m, (nn.Conv2d, nn.Linear)):
                continue
            w = m.weight
            if KIND == "compressed":  # about 60 % zeros, three whole output channels, 127 levels: 7 bits
                w.mul_((torch.rand_like(w) > 0.6).float())
                w[:3] = 0
                step = w.abs().max() / 63
                w.copy_(torch.round(w / step) * step)
    return model
"""


@pytest.mark.parametrize("kind", ["float", "compressed"])
def test_following_the_advice_verifies_and_scores_what_it_promised(tmp_path, kind):
    """The judge's advice is re-scored for real: the claims it names, written into the manifest,
    verify when profiled again and score what the advice said, to the last digit."""
    from harness.judge.evaluate import judge
    from harness.judge.report import render
    from harness.score import advice
    from tests.conftest import make_submission

    rules = with_overrides(RULES, isolation="none")
    folder = make_submission(tmp_path / kind, f"KIND = {kind!r}\n" + ADVISED)
    first = judge(folder, None, rules, "cpu")
    assert first.status == "ok" and first.claims_verified, first.errors
    best, promised = advice(first.params, first.macs, first.measured, first.structured_mac_share, REF)
    assert best.weight_bits <= 16 and best.activation_bits <= 16  # 16 is declarable for a float model
    assert f"the most you may declare: structured_pruning {best.structured_pruning:.4f}" in render(first)
    assert f"score {promised.total:.4f}" in render(first) and "what if" in render(first)
    assert "16 bits" not in render(first).split("what if")[1]  # 16 is advice, not a what-if
    if kind == "compressed":
        assert best.structured_pruning > 0.1 and best.unstructured_pruning > 0.4 and best.weight_bits == 7

    manifest = yaml.safe_load((folder / "submission.yaml").read_text())
    manifest["compression"] = best.model_dump()
    (folder / "submission.yaml").write_text(yaml.safe_dump(manifest))
    again = judge(folder, None, rules, "cpu")
    assert again.claims_verified, again.claim_failures
    assert again.effective == best
    assert again.score.total == pytest.approx(promised.total, rel=1e-12)
    assert again.score.total < first.score.total
