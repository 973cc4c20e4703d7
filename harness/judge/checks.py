"""The images an evaluation predicts, and the checks that tell a model that generalises from one that
memorised the public test images.

`compose()` puts together, for one evaluation, the test images and the images of four checks, and
shuffles them all into one array: stage 2 predicts them in that order, and neither it nor the graph
can tell a test image from a check's image. Only the parent keeps the labels and which is which.

  unseen   a fresh random sample of the CIFAR-10 training images (the data root's train/ split),
           images a submission may have trained on but cannot have stored in place of the test set
           without storing the training set too; compared with the test accuracy
  private  the instructor's own labelled images (`--private-data`), which no student has seen, a
           fresh sample of `private_images` of them; compared with the test accuracy
  flip     test images drawn at random from the whole test set, mirrored left to right; compared
           with the same images' originals
  shift    test images drawn at random, moved by one pixel in one of 8 directions (the border
           repeats the edge pixels); compared with the same images' originals

`grade()` turns the predictions into the test accuracy and one `Check` per check. A check fails
when its gap (reference accuracy minus the check's accuracy) exceeds its margin (the rules'
`unseen_margin`, `private_gap`, `flip_gap`, `shift_gap`) by more than `SIGMAS` standard errors of
the gap: independent samples for unseen and private, paired images (discordant pairs) for flip and
shift. An honest model loses almost nothing on any of them (docs/judging.md has the figures); a
lookup of the test images falls to about chance level on images it never stored.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import Rules
from ..data import TestSet
from ..record import Check

SIGMAS = 3.0  # standard errors of the gap allowed beyond a check's margin (1 honest model in 740 at the margin)
SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]  # the 8 one-pixel moves
NAMES = {"unseen": "training images", "private": "the instructor's private images",
         "flip": "mirrored test images", "shift": "test images shifted by one pixel"}


@dataclass
class Plan:
    """One evaluation's images: `path` holds them in stage 2's order (position p is image `perm[p]` of
    the composed list: the test images first, then each check's part)."""

    path: Path
    perm: np.ndarray  # position -> index in the composed list
    labels: np.ndarray  # of the composed list
    test_size: int
    parts: dict[str, slice] = field(default_factory=dict)  # check -> its indices in the composed list
    origin: dict[str, np.ndarray] = field(default_factory=dict)  # flip, shift -> test indices they come from
    seeds: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # check -> why it did not run

    @property
    def size(self) -> int:
        return int(self.perm.size)


@dataclass(frozen=True)
class Sources:
    """The images of the unseen and private checks, where there are any."""

    unseen: TestSet | None = None
    private: TestSet | None = None
    why_no_unseen: str = "no data root was searched for training images"

    def hashes(self) -> dict[str, str | None]:
        """The checksums a record keeps of these images (`provenance.unseen_sha256`, `private_sha256`)."""
        return {"unseen_sha256": self.unseen.sha256 if self.unseen is not None else None,
                "private_sha256": self.private.sha256 if self.private is not None else None}


def sources(data: str | Path, rules: Rules, private: str | Path | None = None) -> Sources:
    """The training images beside the test set at `data` (when the rules ask for an unseen check) and
    the private images (`private`, else the rules' `private_data`); DataError when the rules require
    the unseen check and there are no training images, or the private images cannot be read."""
    from ..data import find_training, load_private
    from ..errors import DataError

    unseen, why = find_training(data) if rules.unseen_images else (None, "the rules ask for no unseen check")
    if unseen is None and rules.require_unseen:
        raise DataError(f"the rules require the check on unseen training images (require_unseen), but {why}")
    path = private or rules.private_data
    return Sources(unseen=unseen, private=load_private(path) if path else None, why_no_unseen=why)


def drawn(count: int | None, available: int) -> int:
    """How many images a check of `count` images (None: all) predicts from `available`."""
    return available if count is None else min(count, available)


def compose(test: TestSet, rules: Rules | None, folder: Path, sources: Sources | None = None) -> Plan:
    """Compose and shuffle one evaluation's images into `folder`/images.npy, with fresh random draws;
    `rules` None: the test images alone (profile's probe images)."""
    sources = sources or Sources()
    images = test.images()
    parts, labels, origin, seeds, missing = [np.asarray(images)], [test.labels], {}, {}, {}
    spans, start = {}, test.size

    def add(name: str, array: np.ndarray, y: np.ndarray) -> None:
        nonlocal start
        parts.append(array)
        labels.append(y)
        spans[name] = slice(start, start + len(y))
        start += len(y)

    def sample(name: str, data: TestSet, count: int | None) -> None:
        """`drawn(count, data.size)` images of `data`, drawn afresh when fewer than all."""
        pick = np.arange(data.size)
        if drawn(count, data.size) < data.size:
            seeds[name] = secrets.randbits(32)
            pick = np.sort(np.random.default_rng(seeds[name]).choice(data.size, size=count, replace=False))
        add(name, np.asarray(data.images()[pick]), data.labels[pick])

    if rules is not None and rules.unseen_images:
        if sources.unseen is None:
            missing["unseen"] = sources.why_no_unseen
        else:
            sample("unseen", sources.unseen, rules.unseen_images)
    if rules is not None and sources.private is not None:
        sample("private", sources.private, rules.private_images)
    moves = (("flip", rules.flip_images, mirror), ("shift", rules.shift_images, shift)) if rules else ()
    for name, count, move in moves:
        if count:
            seeds[name] = secrets.randbits(32)
            rng = np.random.default_rng(seeds[name])
            idx = np.sort(rng.choice(test.size, size=min(count, test.size), replace=False))
            origin[name] = idx
            add(name, move(np.asarray(images[idx]), rng), test.labels[idx])
    everything = np.concatenate(parts)
    perm = np.random.default_rng(secrets.randbits(128)).permutation(len(everything))
    path = folder / "images.npy"
    np.save(path, everything[perm])
    return Plan(path=path, perm=perm, labels=np.concatenate(labels), test_size=test.size, parts=spans,
                origin=origin, seeds=seeds, missing=missing)


def mirror(images: np.ndarray, rng) -> np.ndarray:
    return np.ascontiguousarray(images[:, :, ::-1])


def shift(images: np.ndarray, rng) -> np.ndarray:
    """Each image moved by one pixel in a direction drawn from `SHIFTS`; the border repeats the edge."""
    out = np.empty_like(images)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = images.shape[1:3]
    for i, k in enumerate(rng.integers(len(SHIFTS), size=len(images))):
        dy, dx = SHIFTS[k]
        out[i] = padded[i, 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
    return out


@dataclass
class Graded:
    """The test figures and the checks of one evaluation."""

    correct: int
    total: int
    predictions: np.ndarray  # of the test images, in the test set's order
    checks: list[Check]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def grade(predictions, plan: Plan, rules: Rules) -> Graded:
    """The test accuracy and every check, from stage 2's predictions in its order."""
    preds = np.empty(plan.size, dtype=np.int64)
    preds[plan.perm] = np.asarray(predictions, dtype=np.int64)
    right = preds == plan.labels
    n = plan.test_size
    test_right = right[:n]
    checks = [Check(name=name, ran=False, note=why) for name, why in plan.missing.items()]
    for name, span in plan.parts.items():
        if name in plan.origin:
            checks.append(_paired(name, test_right[plan.origin[name]], right[span], _margin(name, rules),
                                  plan.seeds.get(name)))
        else:
            checks.append(_independent(name, test_right, right[span], _margin(name, rules), plan.seeds.get(name)))
    return Graded(correct=int(test_right.sum()), total=n, predictions=preds[:n], checks=checks)


def _margin(name: str, rules: Rules) -> float:
    return {"unseen": rules.unseen_margin, "private": rules.private_gap, "flip": rules.flip_gap,
            "shift": rules.shift_gap}[name]


def _independent(name: str, ref: np.ndarray, got: np.ndarray, margin: float, seed: int | None) -> Check:
    """Accuracy on other images than the test set's: the gap's error is that of two independent shares."""
    p, q = ref.mean(), got.mean() if got.size else 0.0
    se = math.sqrt(_variance(int(ref.sum()), ref.size) + _variance(int(got.sum()), got.size))
    return _check(name, got.size, float(q), float(p), margin, se, seed)


def _paired(name: str, ref: np.ndarray, got: np.ndarray, margin: float, seed: int | None) -> Check:
    """Accuracy on changed copies of test images against the same images' originals: only the pairs
    answered differently (right once, wrong once) carry the gap and its error (McNemar's)."""
    n = max(got.size, 1)
    lost, won = int((ref & ~got).sum()), int((~ref & got).sum())
    se = math.sqrt(max(lost + won - (lost - won) ** 2 / n, 1.0)) / n
    return _check(name, got.size, float(got.mean()) if got.size else 0.0, float(ref.mean()) if ref.size else 0.0,
                  margin, se, seed)


def _variance(k: int, n: int) -> float:
    """Variance of an observed share k / n, with a share of (k + 1) / (n + 2) so that 0 % and 100 % keep one."""
    if n == 0:
        return 0.0
    p = (k + 1) / (n + 2)
    return p * (1 - p) / n


def _check(name: str, images: int, acc: float, ref: float, margin: float, se: float, seed: int | None) -> Check:
    gap = ref - acc
    tolerance = margin + SIGMAS * se
    return Check(name=name, ran=True, images=images, accuracy=acc, reference=ref, gap=gap, margin=margin,
                 tolerance=tolerance, passed=gap <= tolerance, seed=seed)


def reason(c: Check) -> str:
    """Why a failed check makes a submission not eligible; the private check's figures stay unsaid
    (they go on the submission's page only)."""
    if c.name == "private":
        return (f"private check failed: the accuracy on the instructor's private images trails the test accuracy "
                f"by more than private_gap {c.margin:g} and the sampling error")
    against = "the test accuracy of" if c.name == "unseen" else "the same images unchanged,"
    return (f"{c.name} check failed: {c.accuracy or 0:.2%} on {c.images:,} {NAMES[c.name]}, {(c.gap or 0) * 100:.1f} "
            f"points below {against} {c.reference or 0:.2%} ({(c.tolerance or 0) * 100:.1f} allowed)")


WARNING = ("the model may have memorised the test images: nothing derived from them may be stored in a "
           "submission (submissions/README.md, 'The one rule about data')")
