"""The ResNet18-normalised score (lower is better) and the verification of declared claims.

    score = [1 - (p_s + p_u)] * (q_w / 32) * w / W_ref  +  (1 - p_s') * (max(q_w, q_a) / 32) * f / F_ref

with p_s, p_u the structured and unstructured pruned fractions of all weights, q_w, q_a
the weight and activation bits, w the parameters, f the MACs of one image, and the
references W_ref = 5.6e6, F_ref = 2.8e8 (ResNet18 at 16 bits) from the competition config.
Only what is both declared and verified is credited: effective pruning is
min(declared, measured), effective bits max(declared, measured).

Scoring version 2: on the MAC term, structured pruning is credited only up to the share of f
that the zero output channels really carry, p_s' = min(p_s, structured_mac_share). Zero
channels added where they cost nothing (a zero layer on a 1x1 input) raise p_s but carry no
MACs, so they cannot shrink the MAC term. The weight term keeps p_s: adding Z zero weights to
w and to the pruned weights leaves (1 - p_s - p_u) * w unchanged, so padding gains nothing there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .record import Compression, Score

SCORING_VERSION = "3"  # bump when the formula, the cost model or the claim rules change
FULL_BITS = 32
# The CIFAR ResNet18 (benchmarks/models.py), the reference model of the score, as the judge counts
# it: 11,169,162 weights (its batch norms fold into their convolutions, one number per channel);
# convolutions and fc 555,422,720 MACs, residual additions 245,760, average pool 8,192.
RESNET18_PARAMS = 11_169_162
RESNET18_MACS = 555_676_672


@dataclass(frozen=True)
class Reference:
    """The score's normalisers, W_ref and F_ref: ResNet18's weights and MACs at 16 bits (the competition
    config's `reference_params` and `reference_macs`)."""

    params: float
    macs: float

    @classmethod
    def of(cls, rules) -> Reference:
        """From the rules (`config.Rules`) or a record's recorded rules (a mapping)."""
        if isinstance(rules, Mapping):
            return cls(float(rules["reference_params"]), float(rules["reference_macs"]))
        return cls(float(rules.reference_params), float(rules.reference_macs))


def reference_score(ref: Reference) -> float:
    """The score of the CIFAR ResNet18 in float16 (about 1.99 with the default rules)."""
    half = Compression(weight_bits=16, activation_bits=16, structured_pruning=0.0, unstructured_pruning=0.0)
    return score(RESNET18_PARAMS, RESNET18_MACS, half, 0.0, ref).total


def score(params: int, macs: int, c: Compression, mac_share: float | None, ref: Reference) -> Score:
    """The two terms of the score for the effective compression `c` against the references `ref`."""
    ops_pruning = min(c.structured_pruning, mac_share if mac_share is not None else c.structured_pruning)
    params_term = (1.0 - (c.structured_pruning + c.unstructured_pruning)) * (c.weight_bits / FULL_BITS) \
        * params / ref.params
    ops_term = (1.0 - ops_pruning) * (max(c.weight_bits, c.activation_bits) / FULL_BITS) * macs / ref.macs
    return Score(params_term=params_term, ops_term=ops_term, total=params_term + ops_term, ops_pruning=ops_pruning)


def verify(declared: Compression, measured: Compression) -> tuple[Compression, list[str]]:
    """Effective compression and the list of failed claims.

    A pruning claim holds when declared <= measured; a bit claim when declared >= measured.
    """
    effective, failures = {}, []
    for key in ("structured_pruning", "unstructured_pruning"):
        d, m = getattr(declared, key), getattr(measured, key)
        effective[key] = min(d, m)
        if d > m + 1e-9:
            failures.append(f"{key}: declared {d:.4f}, measured only {m:.4f}")
    for key in ("weight_bits", "activation_bits"):
        d, m = getattr(declared, key), getattr(measured, key)
        effective[key] = max(d, m)
        if d < m:
            failures.append(f"{key}: declared {d}, measured {m} (a value needs more than {d} bits)")
    return Compression(**effective), failures


HALF_BITS = 16  # a claim of 16 bits always verifies: the judge rounds what it claims to float16 itself


def most_to_declare(measured: Compression) -> Compression:
    """The strongest claims that verify against `measured`: its pruning (rounded down to 4 decimals)
    and its bits, at most 16 (declared 16 bits, the judge rounds the weights or activations to
    float16 before measuring, so a float32 model verifies at 16)."""
    def down(x: float) -> float:
        return math.floor(x * 1e4 + 1e-9) / 1e4

    return Compression(structured_pruning=down(measured.structured_pruning),
                       unstructured_pruning=down(measured.unstructured_pruning),
                       weight_bits=min(measured.weight_bits, HALF_BITS),
                       activation_bits=min(measured.activation_bits, HALF_BITS))


def judged(measured: Compression, declared: Compression) -> Compression:
    """What the judge would measure with `declared` claimed: a 16-bit claim makes it round the
    weights (activations) to float16 first, so their bits measure at most 16."""
    def bits(m: int, d: int) -> int:
        return min(m, HALF_BITS) if d == HALF_BITS else m

    return measured.model_copy(update={"weight_bits": bits(measured.weight_bits, declared.weight_bits),
                                       "activation_bits": bits(measured.activation_bits, declared.activation_bits)})


def advice(params: int, macs: int, measured: Compression, mac_share: float | None,
           ref: Reference) -> tuple[Compression, Score]:
    """The most to declare and its score, re-scored as the judge would: the claims verified against
    what the judge measures with them declared, the score of what that credits."""
    best = most_to_declare(measured)
    effective, failures = verify(best, judged(measured, best))
    if failures:  # a bug of most_to_declare, never the student's: say it rather than advise wrongly
        raise ValueError(f"the advised claims would not verify: {'; '.join(failures)}")
    return best, score(params, macs, effective, mac_share, ref)


def what_if(params: int, macs: int, measured: Compression, mac_share: float | None, ref: Reference,
            bits=(8, 4, 2)) -> list[tuple[int, float]]:
    """Hypothetical scores: the measured pruning with weights and activations at each of `bits`
    below what may be declared. Not verified: the model would have to be quantised so."""
    best = most_to_declare(measured)
    top = max(best.weight_bits, best.activation_bits)
    return [(b, score(params, macs, best.model_copy(update={"weight_bits": b, "activation_bits": b}), mac_share,
                      ref).total) for b in bits if b < top]
