"""The memorisers of tests/hostile/ (ATTACKS.md, round 4) against the checks on unseen images.

Each case stores something derived from the public test images (thumbnails, a perfect hash of a few
pixels, the same for mirrored images, the training images too) and answers by lookup: 100 % on the
test images at a tiny score. Built from real CIFAR-10 images (a subset of ../shared: 1,000 test and
2,000 training images) and evaluated under the default sandbox in one call, with the training
images of the data root sampled by the unseen check and 500 held-back training images, which no
memoriser stored, standing for the instructor's private data. Every memoriser must be caught by the
checks it cannot pass, and by nothing else (without the checks it is eligible: the release tier
runs them so); the baseline example, evaluated beside them, passes every check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, SHARED_DATA

HOSTILE = REPO / "tests" / "hostile"
sys.path.insert(0, str(HOSTILE))
from memorisers import CASES, build, public_subset  # noqa: E402

# case -> the checks it fails (the others it passes)
CAUGHT = {
    "thumbnail_memoriser": {"unseen", "private", "flip"},  # one-pixel shifts keep its thumbnails
    "pixel_hash": {"unseen", "private", "flip", "shift"},
    "flip_invariant_hash": {"unseen", "private", "shift"},
    "flipped_too": {"unseen", "private"},
    "training_too": {"private"},  # it stored the training images too: only private images catch it
}
# case -> (w, f) of the subset's build, by hand in each model.py's COUNTS header: every lookup counted
COUNTS = {"thumbnail_memoriser": (50_010, 52_083), "pixel_hash": (1_292, 38), "flip_invariant_hash": (1_300, 46),
          "flipped_too": (100_010, 101_083), "training_too": (300_010, 297_083)}
RULES = {"unseen_images": 500, "flip_images": 300, "shift_images": 300}
OFF = {"unseen_images": 0, "flip_images": 0, "shift_images": 0}

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"no CIFAR-10 images at {SHARED_DATA}")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The subset, and every case copied out of the repository with weights made from it."""
    tmp = tmp_path_factory.mktemp("memorisers")
    data = public_subset(SHARED_DATA, tmp / "data")
    dirs = {}
    for case in CASES:
        dirs[case] = shutil.copytree(HOSTILE / case, tmp / "cases" / case)
        build(dirs[case], data["public"])
    dirs["baseline-cnn"] = REPO / "submissions" / "baseline-cnn"
    return tmp, data, dirs


def _evaluate(tmp: Path, data: dict, dirs: dict, rules: dict, private: bool, name: str) -> dict:
    config = tmp / f"{name}.yaml"
    config.write_text(yaml.safe_dump(rules))
    argv = [sys.executable, "-m", "harness", "evaluate", *map(str, dirs.values()), "--data", str(data["public"]),
            "--results", str(tmp / name), "--config", str(config), "--json"]
    if private:
        argv += ["--private-data", str(data["private"])]
    env = {**os.environ, "HARNESS_CACHE": str(tmp / "cache")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
    assert done.stdout.strip(), done.stderr[-3000:]
    return dict(zip(dirs, json.loads(done.stdout), strict=True))


@pytest.fixture(scope="module")
def judged(built):
    tmp, data, dirs = built
    return _evaluate(tmp, data, dirs, RULES, private=True, name="checked")


@pytest.mark.parametrize("case", CASES)
def test_a_memoriser_is_caught_by_the_checks_it_cannot_pass(judged, case):
    rec = judged[case]
    assert rec["status"] == "ok" and rec["claims_verified"], rec["errors"]
    assert rec["accuracy"] >= 0.9 and rec["score"]["total"] < 0.06  # it did memorise the test images
    assert (rec["params"], rec["macs"]) == COUNTS[case]
    failed = {c["name"] for c in rec["checks"] if c["ran"] and not c["passed"]}
    assert failed == CAUGHT[case], {c["name"]: (c["accuracy"], c["reference"], c["tolerance"]) for c in rec["checks"]}
    assert all(c["ran"] for c in rec["checks"]) and len(rec["checks"]) == 4
    assert not rec["eligible"] and len(rec["reasons"]) == len(failed)  # the checks' reasons, nothing else
    for c in rec["checks"]:
        if c["name"] in failed and c["name"] in ("unseen", "private"):
            assert c["accuracy"] < 0.4 and c["gap"] > 0.6  # about chance on images it never stored


def test_an_honest_model_beside_them_passes_every_check(judged):
    rec = judged["baseline-cnn"]
    assert rec["eligible"], rec["reasons"]
    assert [(c["name"], c["ran"], c["passed"]) for c in rec["checks"]] == [
        ("unseen", True, True), ("private", True, True), ("flip", True, True), ("shift", True, True)]


@pytest.mark.release
def test_without_the_checks_every_memoriser_is_eligible(built):
    """The attack is real: the same submissions, the checks turned off, are all eligible."""
    tmp, data, dirs = built
    records = _evaluate(tmp, data, {c: dirs[c] for c in CASES}, OFF, private=False, name="unchecked")
    for case, rec in records.items():
        assert rec["eligible"] and rec["accuracy"] == 1.0 and rec["checks"] == [], (case, rec["reasons"])
