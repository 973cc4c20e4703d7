"""The checks against memorised test images (harness/judge/checks.py), in the parent: which images go
to stage 2, how the checks grade them, what a failed or missing check does to a record. Stage 2 is a
stand-in here; tests/test_memorisers.py runs real memorisers through both stages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from harness.cli import main
from harness.config import load_rules, with_overrides
from harness.data import find_training, load_private, load_test
from harness.errors import DataError
from harness.judge import checks
from harness.record import Check

from .conftest import class_images, stand_in_stages, write_folder


def _data(tmp_path, train: int = 30):
    """Test images (10 a class) and `train` training images a class, ImageFolder."""
    root = write_folder(tmp_path / "data", *class_images())
    return write_folder(root, *class_images(train), split="train")


def _run(capsys, *argv):
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def _by_name(rec: dict) -> dict:
    return {c["name"]: c for c in rec["checks"]}


def test_the_images_are_the_test_set_and_each_checks_part_shuffled_together(tmp_path):
    root = _data(tmp_path)
    test, (train, _) = load_test(root), find_training(root)
    private = load_private(write_folder(tmp_path / "p", *class_images(3), split="x") / "x")
    rules = with_overrides(load_rules(), unseen_images=50, flip_images=20, shift_images=20)
    plan = checks.compose(test, rules, tmp_path, checks.Sources(unseen=train, private=private))
    sent = np.load(plan.path)
    assert len(sent) == plan.size == 100 + 50 + 30 + 20 + 20
    assert {k: v.stop - v.start for k, v in plan.parts.items()} == {"unseen": 50, "private": 30, "flip": 20,
                                                                    "shift": 20}
    composed = np.empty_like(sent)
    composed[plan.perm] = sent
    assert (composed[:100] == test.images()).all()  # the test set, in its own order
    flip = plan.origin["flip"]
    assert (composed[plan.parts["flip"]] == test.images()[flip][:, :, ::-1]).all()
    moved = composed[plan.parts["shift"]]
    original = test.images()[plan.origin["shift"]]
    pad = np.pad(original, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    shifts = [pad[:, 1 - dy:33 - dy, 1 - dx:33 - dx] for dy, dx in checks.SHIFTS]
    assert all(any((m == s[i]).all() for s in shifts) for i, m in enumerate(moved))  # each one of the 8
    assert not (plan.perm[:100] == np.arange(100)).all()  # the test images are not first
    again = checks.compose(test, rules, tmp_path / ".", checks.Sources(unseen=train, private=private))
    assert plan.seeds["unseen"] != again.seeds["unseen"]  # fresh draws for each evaluation


def test_a_one_pixel_shift_moves_every_pixel_by_one_in_one_direction():
    img = np.arange(32 * 32 * 3, dtype=np.int64).reshape(1, 32, 32, 3) % 251
    class Pick:
        def __init__(self, k):
            self.k = k

        def integers(self, n, size):
            return np.full(size, self.k)

    for k, (dy, dx) in enumerate(checks.SHIFTS):
        out = checks.shift(img.astype(np.uint8), Pick(k))[0].astype(np.int64)
        inner = out[1:31, 1:31]
        assert (inner == img[0, 1 - dy:31 - dy, 1 - dx:31 - dx]).all(), (dy, dx)


@pytest.mark.parametrize(("right", "n", "passed"), [(900, 1000, True), (850, 1000, True), (800, 1000, False),
                                                    (80, 100, True), (70, 100, False)])
def test_an_independent_check_allows_its_margin_and_three_standard_errors(right, n, passed):
    """Test accuracy 90 % on 10,000 images, margin 2 points: 85 % on 1,000 unseen images is within 2 points
    plus 3 standard errors (5.5 in all), 80 % is not; on 100 images the error is wider (14 points)."""
    ref = np.zeros(10_000, bool)
    ref[:9000] = True
    got = np.zeros(n, bool)
    got[:right] = True
    c = checks._independent("unseen", ref, got, 0.02, seed=1)
    se = np.sqrt(0.9 * 0.1 / 10_000 + got.mean() * (1 - got.mean()) / n)
    assert c.tolerance == pytest.approx(0.02 + 3 * se, rel=0.03)
    assert c.passed is passed and c.gap == pytest.approx(0.9 - got.mean())


def test_a_paired_check_counts_the_images_answered_differently():
    """500 images, 450 right unchanged; mirrored: 20 of those lost, 5 others won: gap 3 points, its error
    from the 25 discordant pairs."""
    ref = np.zeros(500, bool)
    ref[:450] = True
    got = ref.copy()
    got[:20] = False
    got[450:455] = True
    c = checks._paired("flip", ref, got, 0.05, seed=None)
    assert c.gap == pytest.approx(15 / 500)
    assert c.tolerance == pytest.approx(0.05 + 3 * np.sqrt(25 - 15**2 / 500) / 500)
    assert c.passed
    c = checks._paired("flip", ref, ~ref, 0.05, seed=None)  # every answer changes: a memoriser
    assert not c.passed and c.gap == pytest.approx(0.8)


def test_right_on_the_test_images_only_is_not_eligible(capsys, tmp_path, oracle, monkeypatch):
    """The memoriser's signature on each check: right on the test images, wrong on the check's images."""
    root = _data(tmp_path)
    private = write_folder(tmp_path / "p", *class_images(5), split="mine") / "mine"
    for name in ("unseen", "private", "flip", "shift"):
        stand_in_stages(monkeypatch, answer=lambda y: y, on={name: lambda y: (y + 1) % 10})
        code, rec = _run(capsys, "evaluate", str(oracle), "--data", str(root), "--private-data", str(private),
                         "--results", str(tmp_path / "r"))
        c = _by_name(rec)
        assert code == 1 and rec["accuracy"] == 1.0 and not rec["eligible"], name
        assert not c[name]["passed"] and all(x["passed"] for x in rec["checks"] if x["name"] != name)
        assert rec["reasons"] == [checks.reason(Check.model_validate(c[name]))]
        assert rec["reasons"][0].startswith(f"{name} check failed")
        assert any("may have memorised the test images" in w for w in rec["warnings"])
        if name == "private":  # no figure of the private check in the reasons (they reach the board)
            assert "%" not in rec["reasons"][0]
        assert rec["provenance"]["unseen_sha256"] and rec["provenance"]["private_sha256"]
        assert c["unseen"]["images"] == 300 and c["unseen"]["seed"] is None  # all 300: nothing drawn


def test_an_honest_answer_passes_every_check(capsys, tmp_path, oracle, monkeypatch):
    root = _data(tmp_path)
    stand_in_stages(monkeypatch, answer=lambda y: y)
    code, rec = _run(capsys, "evaluate", str(oracle), "--data", str(root), "--results", str(tmp_path / "r"))
    assert code == 0 and rec["eligible"]
    assert [(c["name"], c["ran"], c["passed"]) for c in rec["checks"]] == [
        ("unseen", True, True), ("flip", True, True), ("shift", True, True)]


def test_without_training_images_the_record_says_so_and_the_rules_can_require_them(capsys, tmp_path, oracle,
                                                                                     folder_data, monkeypatch):
    stand_in_stages(monkeypatch, answer=lambda y: y)
    code, rec = _run(capsys, "evaluate", str(oracle), "--data", str(folder_data), "--results", str(tmp_path / "r"))
    assert code == 0 and rec["eligible"]
    unseen = _by_name(rec)["unseen"]
    assert not unseen["ran"] and "holds no CIFAR-10 training images" in unseen["note"]
    config = tmp_path / "rules.yaml"
    config.write_text(yaml.safe_dump({"require_unseen": True}))
    code = main(["evaluate", str(oracle), "--data", str(folder_data), "--config", str(config),
                 "--results", str(tmp_path / "r2")])
    assert code == 3 and "require the check on unseen training images" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()  # refused before any evaluation


def test_private_data_from_the_config_is_relative_to_it_and_any_size_is_fitted(capsys, tmp_path, oracle,
                                                                               monkeypatch):
    from PIL import Image

    root = _data(tmp_path)
    mine = tmp_path / "course" / "private"
    for k, name in enumerate(("cat", "dog")):
        (mine / name).mkdir(parents=True)
        Image.new("RGB", (64, 48), (10 + 25 * k, 0, 0)).save(mine / name / "a.png")
    config = tmp_path / "course" / "rules.yaml"
    config.write_text(yaml.safe_dump({"private_data": "private"}))
    stand_in_stages(monkeypatch, answer=lambda y: y)
    code, rec = _run(capsys, "evaluate", str(oracle), "--data", str(root), "--config", str(config),
                     "--results", str(tmp_path / "r"))
    assert code == 0 and _by_name(rec)["private"]["images"] == 2
    private = load_private(mine)
    assert private.images().shape == (2, 32, 32, 3) and sorted(private.labels.tolist()) == [3, 5]


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: (p / "kitten").mkdir(parents=True), "are not among CIFAR-10's"),
    (lambda p: ((p / "cat").mkdir(parents=True), (p / "cat" / "x.jpg").write_bytes(b"not a jpeg")),
     "not a readable image"),
])
def test_unusable_private_data_is_refused_with_its_reason(tmp_path, make, message):
    make(tmp_path / "p")
    with pytest.raises(DataError, match=message):
        load_private(tmp_path / "p")


def test_the_private_data_report_finds_copies_duplicates_and_unreadable_files(capsys, tmp_path):
    """Random images stand for CIFAR-10; the folder holds 3 new images, an enlarged copy of a test image,
    a mirrored training image, an image twice and a file that is no image."""
    from PIL import Image

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 2)
    cifar = write_folder(tmp_path / "cifar", rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), labels)
    write_folder(cifar, rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), labels, split="train")
    test, (train, _) = load_test(cifar), find_training(cifar)
    mine = tmp_path / "mine"
    for c in ("cat", "dog", "ship"):
        (mine / c).mkdir(parents=True)
    new = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    for i, img in enumerate(new):
        Image.fromarray(img).save(mine / "cat" / f"new{i}.png")
    Image.fromarray(new[0]).save(mine / "dog" / "again.png")
    Image.fromarray(np.asarray(test.images()[0])).resize((96, 96), Image.Resampling.BICUBIC).save(
        mine / "dog" / "test-copy.png")
    Image.fromarray(np.asarray(train.images()[0])[:, ::-1]).save(mine / "ship" / "train-mirrored.png")
    (mine / "ship" / "broken.jpg").write_bytes(b"no image")
    assert main(["private-data", str(mine), "--data", str(cifar), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 6 and out["per_class"]["cat"] == 3 and out["per_class"]["airplane"] == 0
    assert [u.split(":")[0] for u in out["unreadable"]] == ["ship/broken.jpg"] and out["resized"] == 1
    near = {(d["image"], d["split"]) for d in out["near_duplicates"]}
    assert near == {("dog/test-copy.png", "test"), ("ship/train-mirrored.png", "train")}
    assert [(d["image"], d["same_as"]) for d in out["duplicates_within"]] == [("cat/new0.png", "dog/again.png")]
    assert out["drawn"] == 6 and out["standard_error"] == pytest.approx((0.9 * 0.1 / 6) ** 0.5)
    assert main(["private-data", str(mine), "--data", str(cifar)]) == 0
    text = capsys.readouterr().out
    assert "near-duplicates of CIFAR-10 images" in text and "dog/test-copy.png ~ a CIFAR-10 test image" in text
