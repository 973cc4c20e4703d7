"""The ResNet18-normalised score (lower is better) and the verification of declared claims.

    score = [1 - (p_s + p_u)] * (q_w / 32) * w / W_ref  +  (1 - p_s) * (max(q_w, q_a) / 32) * f / F_ref

with p_s, p_u the structured and unstructured pruned fractions of all weights, q_w, q_a
the weight and activation bits, w the parameters, f the MACs of one image, and the
references W_ref = 5.6e6, F_ref = 2.8e8 (ResNet18 at 16 bits) from the competition config.
Only what is both declared and verified is credited: effective pruning is
min(declared, measured), effective bits max(declared, measured).
"""

from __future__ import annotations

from dataclasses import dataclass

SCORING_VERSION = "1"  # bump when the formula or the claim rules change
FULL_BITS = 32


@dataclass(frozen=True)
class Terms:
    params_term: float
    ops_term: float

    @property
    def total(self) -> float:
        return self.params_term + self.ops_term


def score(params: int, macs: int, p_s: float, p_u: float, q_w: int, q_a: int,
          reference_params: float = 5.6e6, reference_macs: float = 2.8e8) -> Terms:
    """The two terms of the score for the given (effective) compression."""
    params_term = (1.0 - (p_s + p_u)) * (q_w / FULL_BITS) * params / reference_params
    ops_term = (1.0 - p_s) * (max(q_w, q_a) / FULL_BITS) * macs / reference_macs
    return Terms(params_term=params_term, ops_term=ops_term)


def verify(declared: dict, measured: dict) -> tuple[dict, list[str]]:
    """Effective compression and the list of failed claims.

    A pruning claim holds when declared <= measured; a bit claim when declared >= measured.
    """
    effective, failures = {}, []
    for key in ("structured_pruning", "unstructured_pruning"):
        d, m = declared[key], measured[key]
        effective[key] = min(d, m)
        if d > m + 1e-9:
            failures.append(f"{key}: declared {d:.4f}, measured only {m:.4f}")
    for key in ("weight_bits", "activation_bits"):
        d, m = declared[key], measured[key]
        effective[key] = max(d, m)
        if d < m:
            failures.append(f"{key}: declared {d}, measured {m} (a value needs more than {d} bits)")
    return effective, failures
