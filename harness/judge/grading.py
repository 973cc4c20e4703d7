"""Grading one evaluation: what the parent concludes from stage 2's numbers and predictions.

Pure functions, in the parent, of typed inputs; each returns parts of the record, which
`evaluate` builds once:

* `credit`: the claims verified against what was measured, the score of what is both declared
  and verified (`harness.score`);
* `grade`: the accuracy on the test images and the checks against memorised test images
  (`checks.grade`), the reasons a submission is not eligible, the warnings a student should read
  (one class for most answers, a missing or 0-255 `normalize`), and eligibility.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import Rules
from ..data import CLASSES, TestSet
from ..manifest import Manifest
from ..record import Check, Compression, Score, percent
from ..score import Reference, score, verify
from . import checks

ONE_CLASS_SHARE = 0.5  # warn when one class takes more than this share of the answers
NOT_VERIFIED = "claims not verified"


@dataclass(frozen=True)
class Credit:
    """The claims against the measurement: what is credited, what failed, and the score."""

    effective: Compression
    failures: list[str]
    score: Score

    @property
    def verified(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class Grade:
    """The test figures, the checks, and the verdict with its reasons and warnings."""

    correct: int
    total: int
    accuracy: float
    checks: list[Check]
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    eligible: bool = False


def credit(params: int, macs: int, declared: Compression, measured: Compression, mac_share: float | None,
           rules: Rules) -> Credit:
    """Verify the claims and score what is both declared and verified."""
    effective, failures = verify(declared, measured)
    return Credit(effective, failures, score(params, macs, effective, mac_share, Reference.of(rules)))


def grade(predictions: list[int], order: checks.Plan, test: TestSet, rules: Rules, claims: Credit,
          manifest: Manifest) -> Grade:
    """Accuracy and the checks, with the labels and the permutation only the parent holds; the
    reasons (the accuracy first, then the claims, then the checks), the warnings, eligibility."""
    graded = checks.grade(predictions, order, rules)
    warnings = []
    counts = np.bincount(graded.predictions, minlength=10)
    if counts.max() > ONE_CLASS_SHARE * test.size:
        top = int(counts.argmax())
        warnings.append(f"the model answers class {top} ({CLASSES[top]}) for {counts.max() / test.size:.0%} of the "
                        "test images (each class is a tenth of them): check the normalisation, the weights and the "
                        "order of the classes")
    reasons = [f"accuracy {graded.accuracy:.2%} below {percent(rules.accuracy_threshold)}"] \
        if graded.accuracy < rules.accuracy_threshold else []
    reasons += [] if claims.verified else [NOT_VERIFIED]
    caught = [c for c in graded.checks if c.ran and not c.passed]
    failed = [checks.reason(c) for c in caught]
    if rules.require_unseen:
        failed += [f"the rules require the unseen check, which did not run: {c.note}" for c in graded.checks
                   if c.name == "unseen" and not c.ran]
    if caught:
        warnings.append(checks.WARNING)
    if (hint := normalize_hint(manifest, graded.accuracy, rules)) is not None:
        warnings.append(hint)
    eligible = claims.verified and graded.accuracy >= rules.accuracy_threshold and not failed
    return Grade(graded.correct, graded.total, graded.accuracy, graded.checks, reasons + failed, warnings, eligible)


def normalize_hint(m: Manifest, accuracy: float, rules: Rules) -> str | None:
    """A word when the accuracy misses the threshold and no `normalize` is declared: the commonest
    mistake, a model trained on normalised images and judged on images in [0, 1]."""
    if m.model.normalize is not None or accuracy >= rules.accuracy_threshold:
        return None
    return (f"accuracy {accuracy:.2%} and no model.normalize in submission.yaml: the harness gives the model "
            "images in [0, 1], not normalised; if it was trained on normalised images (transforms.Normalize), "
            "declare the same mean and std there, e.g. normalize: {mean: [0.4914, 0.4822, 0.4465], "
            "std: [0.2470, 0.2435, 0.2616]}")


def scale_warning(m: Manifest) -> str | None:
    """A word when `normalize` looks like it was written for images in 0-255, not in [0, 1]."""
    n = m.model.normalize
    if n is None or max(max(n.mean), max(n.std)) <= 1.5:
        return None
    return (f"normalize: mean {n.mean} and std {n.std} look like a 0-255 scale; the harness scales the images "
            "to [0, 1] first, then applies them: divide both by 255 (e.g. mean 0.4914, std 0.2470)")
