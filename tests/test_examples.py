"""Every example submission, through the harness: profile, a subset of the real test images
(fast), and the whole test set (slow). They must verify their claims and pass 90 %."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.cli import main

from .conftest import REPO, SHARED_DATA, write_batches

EXAMPLES = sorted(p for p in (REPO / "submissions").iterdir() if (p / "submission.yaml").is_file())
SUBSET_PER_CLASS = 50
needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"real CIFAR-10 images not found at {SHARED_DATA}")


def evaluate(capsys, example, data, results):
    code = main(["evaluate", str(example), "--data", str(data), "--results", str(results), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_there_are_examples():
    assert len(EXAMPLES) >= 4


@pytest.fixture(scope="module")
def real_subset(tmp_path_factory):
    """500 real test images, 50 per class, in torchvision's layout (the other layout than the shared copy)."""
    from harness.data import load_test

    test = load_test(SHARED_DATA)
    idx = np.concatenate([np.flatnonzero(test.labels == c)[:SUBSET_PER_CLASS] for c in range(10)])
    return write_batches(tmp_path_factory.mktemp("subset"), np.asarray(test.images()[idx]), test.labels[idx])


@needs_data
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_on_a_subset(capsys, tmp_path, real_subset, example):
    code, rec = evaluate(capsys, example, real_subset, tmp_path)
    assert rec["status"] == "ok", rec["errors"]
    assert rec["claims_verified"], rec["claim_failures"]
    assert not rec["uncounted_ops"]
    assert rec["accuracy"] >= 0.86  # 500 images: the full set is checked by the slow test
    assert rec["score"]["total"] < 1.0


@needs_data
@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_eligible_on_the_whole_test_set(capsys, tmp_path, example):
    code, rec = evaluate(capsys, example, SHARED_DATA, tmp_path)
    assert code == 0 and rec["eligible"], rec["reasons"]
    assert rec["total"] == 10_000 and rec["accuracy"] >= 0.90
