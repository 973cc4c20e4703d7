"""Score arithmetic (scoring version 2) and claim verification."""

from __future__ import annotations

import pytest

from harness.config import load_rules, with_overrides
from harness.record import Compression
from harness.score import RESNET18_MACS, RESNET18_PARAMS, reference_score, score, verify

RULES = load_rules()


def c(p_s=0.0, p_u=0.0, q_w=32, q_a=32) -> Compression:
    return Compression(structured_pruning=p_s, unstructured_pruning=p_u, weight_bits=q_w, activation_bits=q_a)


def test_resnet18_half_precision_is_the_reference():
    s = score(RESNET18_PARAMS, RESNET18_MACS, c(q_w=16, q_a=16), 0.0, RULES)
    assert s.params_term == pytest.approx(RESNET18_PARAMS / 2 / 5.6e6) == pytest.approx(0.99767, abs=1e-5)
    assert s.ops_term == pytest.approx(RESNET18_MACS / 2 / 2.8e8) == pytest.approx(0.99228, abs=1e-5)
    assert s.total == pytest.approx(1.98995, abs=1e-5) == reference_score(RULES)


def test_terms_by_hand():
    s = score(1_000_000, 50_000_000, c(0.2, 0.3, 4, 8), 1.0, RULES)
    assert s.params_term == pytest.approx((1 - 0.5) * (4 / 32) * 1e6 / 5.6e6)
    assert s.ops_term == pytest.approx((1 - 0.2) * (8 / 32) * 5e7 / 2.8e8)
    assert s.total == pytest.approx(s.params_term + s.ops_term)


def test_structured_pruning_on_the_mac_term_is_capped_by_the_macs_it_removes():
    """Zero channels that carry 5 % of the MACs earn at most 5 % on the MAC term, whatever p_s is."""
    s = score(1_000_000, 50_000_000, c(0.6, 0.0, 32, 32), 0.05, RULES)
    assert s.ops_pruning == 0.05
    assert s.ops_term == pytest.approx(0.95 * 5e7 / 2.8e8)
    assert s.params_term == pytest.approx(0.4 * 1e6 / 5.6e6)  # the weight term keeps p_s


def test_padding_with_zero_weights_gains_nothing():
    w, f, zeros = 1_000_000, 50_000_000, 4_000_000  # 4 M zero weights in channels that carry no MACs
    honest = score(w, f, c(), 0.0, RULES).total
    padded = score(w + zeros, f, c(zeros / (w + zeros)), 0.0, RULES).total
    assert padded == pytest.approx(honest)


def test_constants_come_from_the_rules():
    rules = with_overrides(RULES, reference_params=100, reference_macs=100)
    s = score(100, 200, c(), 0.0, rules)
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
