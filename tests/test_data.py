"""Test data in both layouts: found, decoded once, cached by checksum, checked for CIFAR-10's classes."""

from __future__ import annotations

import numpy as np
import pytest

from harness import data
from harness.errors import DataError

from .conftest import class_images, write_batches, write_folder


def _paired(t) -> bool:
    """Each cached image still carries its own label (class_images: grey level 10 + 25 k)."""
    return bool(np.abs(t.images()[:, 0, 0, 0].astype(int) - (10 + 25 * t.labels)).max() <= 3)


def test_folder_layout_root_and_test_folder(folder_data):
    images, labels = class_images()
    for path in (folder_data, folder_data / "test"):
        t = data.load_test(path)  # the first call decodes, the second reads the cache: the same pairs
        assert t.size == 100 and t.source.startswith("ImageFolder")
        assert _paired(t) and np.array_equal(np.sort(t.labels), labels)


def test_the_cache_is_never_ordered_by_class(batches_data):
    _, labels = class_images()
    t = data.load_test(batches_data)
    assert np.array_equal(np.sort(t.labels), labels) and not np.array_equal(t.labels, labels)
    runs = int((np.diff(t.labels) != 0).sum())
    assert runs > 50  # 100 images of 10 classes: a sorted order has 9 changes of class


def test_batches_layout_root_and_folder(batches_data):
    images, labels = class_images()
    for path in (batches_data, batches_data / "cifar-10-batches-py"):
        t = data.load_test(path)
        assert _paired(t)
        order = np.argsort(t.labels, kind="stable")
        assert np.array_equal(np.sort(t.images().reshape(100, -1), axis=0), np.sort(images.reshape(100, -1), axis=0))
        assert np.array_equal(t.labels[order], labels)


def test_cache_is_reused_and_keyed_by_content(folder_data, monkeypatch):
    first = data.load_test(folder_data)
    calls = []
    monkeypatch.setattr(data, "_decode_folder", lambda *a: calls.append(a))
    again = data.load_test(folder_data)
    assert again.sha256 == first.sha256 and calls == []  # no second decode
    images_file = again.images_path
    assert images_file.name == f"{first.sha256}.shuffled.images.npy"
    assert not np.lib.format.open_memmap(images_file).dtype.names  # images only, no labels inside


def test_changed_file_changes_the_checksum(tmp_path):
    images, labels = class_images()
    a = data.load_test(write_folder(tmp_path / "a", images, labels)).sha256
    images[0, 0, 0, 0] = 255
    assert data.load_test(write_folder(tmp_path / "b", images, labels)).sha256 != a


def test_wrong_classes_are_refused(tmp_path):
    images, labels = class_images()
    root = write_folder(tmp_path / "d", images, labels)
    (root / "test" / "truck").rename(root / "test" / "lorry")
    with pytest.raises(DataError, match="not CIFAR-10's"):
        data.load_test(root)


def test_wrong_order_in_batches_meta_is_refused(tmp_path):
    import pickle

    root = write_batches(tmp_path / "b", *class_images())
    meta = root / "cifar-10-batches-py" / "batches.meta"
    names = [c.encode() for c in reversed(data.CLASSES)]
    meta.write_bytes(pickle.dumps({b"label_names": names}))
    with pytest.raises(DataError, match="not CIFAR-10's"):
        data.load_test(root)


def test_wrong_image_size_and_missing_data(tmp_path):
    from PIL import Image

    root = write_folder(tmp_path / "d", *class_images())
    Image.new("RGB", (64, 64)).save(root / "test" / "cat" / "big.jpg")
    with pytest.raises(DataError, match="32x32"):
        data.load_test(root)
    with pytest.raises(DataError, match="no CIFAR-10 test set"):
        data.load_test(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        data.load_test(tmp_path / "absent")
