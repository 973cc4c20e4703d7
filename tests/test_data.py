"""Test data in both layouts: found, decoded once, cached by checksum, checked for CIFAR-10's classes."""

from __future__ import annotations

import numpy as np
import pytest

from harness import data
from harness.errors import DataError

from .conftest import class_images, write_batches, write_folder


def test_folder_layout_root_and_test_folder(folder_data):
    images, labels = class_images()
    for path in (folder_data, folder_data / "test"):
        t = data.load_test(path)
        assert t.size == 100 and t.source.startswith("ImageFolder")
        assert np.array_equal(t.labels, labels)
        assert np.abs(t.images().astype(int) - images.astype(int)).max() <= 3  # JPEG round trip


def test_batches_layout_root_and_folder(batches_data):
    images, labels = class_images()
    for path in (batches_data, batches_data / "cifar-10-batches-py"):
        t = data.load_test(path)
        assert np.array_equal(t.images(), images) and np.array_equal(t.labels, labels)


def test_cache_is_reused_and_keyed_by_content(folder_data, monkeypatch):
    first = data.load_test(folder_data)
    calls = []
    monkeypatch.setattr(data, "_decode_folder", lambda *a: calls.append(a))
    again = data.load_test(folder_data)
    assert again.sha256 == first.sha256 and calls == []  # no second decode
    images_file = again.images_path
    assert images_file.name == f"{first.sha256}.images.npy"
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
