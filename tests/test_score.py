"""Score arithmetic and claim verification."""

from __future__ import annotations

import pytest

from harness.score import score, verify

RESNET18_PARAMS = 11_173_962
RESNET18_MACS = 556_651_530


def test_resnet18_half_precision_scores_about_two():
    t = score(RESNET18_PARAMS, RESNET18_MACS, 0, 0, 16, 16)
    assert t.total == pytest.approx(1.99, abs=0.01)


def test_terms_by_hand():
    t = score(1_000_000, 50_000_000, p_s=0.2, p_u=0.3, q_w=4, q_a=8)
    assert t.params_term == pytest.approx((1 - 0.5) * (4 / 32) * 1e6 / 5.6e6)
    assert t.ops_term == pytest.approx((1 - 0.2) * (8 / 32) * 5e7 / 2.8e8)
    assert t.total == pytest.approx(t.params_term + t.ops_term)


def test_constants_come_from_the_rules():
    t = score(100, 200, 0, 0, 32, 32, reference_params=100, reference_macs=100)
    assert (t.params_term, t.ops_term) == (1.0, 2.0)


DECLARED = {"structured_pruning": 0.1, "unstructured_pruning": 0.4, "weight_bits": 8, "activation_bits": 8}


def test_true_claims_pass_and_credit_the_declaration():
    measured = {"structured_pruning": 0.15, "unstructured_pruning": 0.5, "weight_bits": 4, "activation_bits": 8}
    eff, failures = verify(DECLARED, measured)
    assert failures == []
    assert eff == DECLARED  # only what is declared is credited


def test_overclaimed_pruning_fails_and_credits_the_measurement():
    measured = {"structured_pruning": 0.1, "unstructured_pruning": 0.2, "weight_bits": 8, "activation_bits": 8}
    eff, failures = verify(DECLARED, measured)
    assert len(failures) == 1 and "unstructured_pruning" in failures[0]
    assert eff["unstructured_pruning"] == 0.2


def test_overclaimed_bits_fail_and_credit_the_measurement():
    measured = {"structured_pruning": 0.1, "unstructured_pruning": 0.4, "weight_bits": 32, "activation_bits": 16}
    eff, failures = verify(DECLARED, measured)
    assert len(failures) == 2
    assert (eff["weight_bits"], eff["activation_bits"]) == (32, 16)
