"""CIFAR-10 test data: find it, decode it once, cache it as uint8 arrays keyed by its checksum.

Two layouts are accepted (`load_test`):

* torchvision's `cifar-10-batches-py/` (a root holding it, or the folder itself);
* an ImageFolder tree, `ROOT/test/<class>/*.jpg|png` or the `test/` folder itself.

Either way the classes must be CIFAR-10's, in CIFAR-10's order. `find_training` finds the
training split beside the test split (the unseen check's images); `load_private` reads the
instructor's private images (any size, brought to 32 x 32 by `fit`). The decoded set is
cached under `cache_dir()` as `<sha256>.shuffled.images.npy` (uint8, N x 32 x 32 x 3, HWC)
and `<sha256>.shuffled.labels.npy` (int64, N), where the sha256 is over the source files'
names and bytes. The cached order is shuffled (a fixed permutation drawn from the checksum):
no file is ordered by class, and each evaluation shuffles again before stage 2 sees the images.
This module needs numpy and Pillow, never torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)  # height, width, channels of one CIFAR-10 image
_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
_log = logging.getLogger(__name__)  # the command line shows its INFO lines on a terminal
_LAYOUT = "shuffled"  # in the cache's file names: caches of another layout are never read


@dataclass(frozen=True)
class TestSet:
    """A decoded test set: where its arrays lie on disk and what it holds."""

    images_path: Path  # uint8 [N, 32, 32, 3], no labels
    labels: np.ndarray  # int64 [N]
    sha256: str  # checksum of the source files
    source: str  # human-readable description of the layout

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def images(self) -> np.ndarray:
        return np.load(self.images_path, mmap_mode="r")


def cache_dir() -> Path:
    """Where decoded test sets are kept: `$HARNESS_CACHE`, else `~/.cache/cifar10-harness`."""
    env = os.environ.get("HARNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "cifar10-harness"


def load_test(path: str | os.PathLike) -> TestSet:
    """Locate the CIFAR-10 test split under `path`, decode it (or reuse the cache), check it."""
    return load_split(path, "test")


def load_split(path: str | os.PathLike, split: str = "test") -> TestSet:
    """Locate the `split` ("test" or "train") under `path` in either layout, decode and cache it."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such file or directory")
    batches = _find_batches(root)
    if batches is not None:
        names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
        files = [batches / n for n in names]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise DataError(f"{batches}: missing {', '.join(missing)}")
        if (batches / "batches.meta").is_file():
            files.append(batches / "batches.meta")
        return _cached(files, batches, lambda: _decode_batches(batches, names), f"cifar-10-batches-py at {batches}")
    folder = _find_folder(root, split)
    if folder is None:
        raise DataError(
            f"{root}: no CIFAR-10 {split} set found; expected a torchvision root with cifar-10-batches-py/, "
            f"an ImageFolder root with {split}/<class>/, or such a {split}/ folder"
        )
    present = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if tuple(present) != CLASSES:
        raise DataError(f"{folder}: class folders {present} are not CIFAR-10's {list(CLASSES)}")
    files = sorted(p for c in CLASSES for p in (folder / c).iterdir() if p.suffix.lower() in _SUFFIXES)
    return _cached(files, folder, lambda: _decode_folder(folder, files), f"ImageFolder at {folder}")


def find_training(path: str | os.PathLike) -> tuple[TestSet | None, str]:
    """The CIFAR-10 training split beside the test split at `path` (torchvision's `data_batch_*`, or an
    ImageFolder `train/` next to `test/`), decoded and cached; or None and why there is none."""
    root = Path(path).expanduser()
    batches = _find_batches(root)
    if batches is not None:
        if not (batches / "data_batch_1").is_file():
            return None, "the data root holds no data_batch_* files (the training images)"
        return load_split(batches, "train"), ""
    if (root / "train").is_dir():
        return load_split(root, "train"), ""
    if root.name == "test" and (root.parent / "train").is_dir():
        return load_split(root.parent, "train"), ""
    return None, "the data root holds no CIFAR-10 training images (a train/ folder beside test/, or data_batch_*)"


def load_private(path: str | os.PathLike) -> TestSet:
    """The instructor's private images: an ImageFolder `PATH/<class>/*` whose folders are CIFAR-10 class
    names (not necessarily all ten), images of any size and format Pillow reads, each brought to
    32 x 32 by `fit()`. Decoded once and cached like the test set."""
    folder, files = private_files(path)
    return _cached(files, folder, lambda: _decode_folder(folder, files, fit_size=True), f"private images at {folder}",
                   layout="fitted")


def private_files(path: str | os.PathLike) -> tuple[Path, list[Path]]:
    """The folder of private images and its image files, sorted; DataError unless its folders are among
    CIFAR-10's class names."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: the private data must be a folder of class folders (PATH/<class>/ images)")
    present = sorted(p.name for p in folder.iterdir() if p.is_dir())
    odd = [name for name in present if name not in CLASSES]
    if odd or not present:
        raise DataError(f"{folder}: class folders {odd or present} are not among CIFAR-10's {list(CLASSES)}")
    return folder, sorted(p for c in present for p in (folder / c).iterdir() if p.suffix.lower() in _SUFFIXES)


def fit(img):
    """A Pillow image as CIFAR-10's: RGB, the centred square of its shorter side, resized to 32 x 32 with
    Lanczos filtering (a 32 x 32 image is unchanged)."""
    from PIL import Image, ImageOps

    img = img.convert("RGB")
    if img.size == IMAGE_SHAPE[1::-1]:
        return img
    return ImageOps.fit(img, IMAGE_SHAPE[1::-1], method=Image.Resampling.LANCZOS)


def write_cache(images: np.ndarray, labels: np.ndarray, sha: str, layout: str = _LAYOUT) -> Path:
    """Store a decoded set atomically under the cache; returns the images file."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(int(sha[:16], 16)).permutation(len(labels))  # never by class
    for suffix, array in (("labels", labels), ("images", images)):
        final = folder / f"{sha}.{layout}.{suffix}.npy"
        tmp = folder / f".{sha}.{suffix}.{os.getpid()}.tmp.npy"
        np.save(tmp, np.ascontiguousarray(array[order]))
        os.replace(tmp, final)
    return folder / f"{sha}.{layout}.images.npy"


def _cached(files: list[Path], base: Path, decode, source: str, layout: str = _LAYOUT) -> TestSet:
    sha = _checksum(files, base)
    images_path = cache_dir() / f"{sha}.{layout}.images.npy"
    labels_path = cache_dir() / f"{sha}.{layout}.labels.npy"
    if images_path.exists() and labels_path.exists():
        labels = np.load(labels_path)
    else:
        _log.info("decoding the images of %s, once; later runs read them from %s", source, cache_dir())
        images, labels = decode()
        _check(images, labels, source)
        images_path = write_cache(images, labels, sha, layout)
        labels = np.load(labels_path)  # in the cache's (shuffled) order, as the images
    return TestSet(images_path=images_path, labels=labels, sha256=sha, source=source)


def _checksum(files: list[Path], base: Path) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(base).as_posix().encode() + b"\0")
        digest.update(f.read_bytes())
    return digest.hexdigest()


def _find_batches(root: Path) -> Path | None:
    for candidate in (root, root / "cifar-10-batches-py"):
        if (candidate / "batches.meta").is_file() or (candidate / "test_batch").is_file():
            return candidate
    return None


def _find_folder(root: Path, split: str) -> Path | None:
    for candidate in (root / split, root):
        if candidate.is_dir() and any((candidate / c).is_dir() for c in CLASSES):
            return candidate
    return None


def _decode_batches(folder: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    meta = _unpickle(folder / "batches.meta") if (folder / "batches.meta").is_file() else None
    if meta is not None:
        classes = tuple(n.decode() if isinstance(n, bytes) else n for n in meta[b"label_names"])
        if classes != CLASSES:
            raise DataError(f"{folder / 'batches.meta'}: classes {list(classes)} are not CIFAR-10's {list(CLASSES)}")
    datas, labels = [], []
    for name in names:
        batch = _unpickle(folder / name)
        try:
            datas.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        except (KeyError, ValueError) as err:
            raise DataError(f"{folder / name}: not a CIFAR-10 batch ({err})") from None
    return np.ascontiguousarray(np.concatenate(datas)), np.concatenate(labels)


def _unpickle(path: Path) -> dict:
    # The data files are the instructor's, not a submission's: pickle is their published format.
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except Exception as err:  # noqa: BLE001 - any decoding failure means a bad file
        raise DataError(f"{path}: cannot read CIFAR-10 batch ({err})") from None


def _decode_folder(folder: Path, files: list[Path], fit_size: bool = False) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    index = {name: i for i, name in enumerate(CLASSES)}
    images = np.empty((len(files),) + IMAGE_SHAPE, dtype=np.uint8)
    labels = np.empty(len(files), dtype=np.int64)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as img:
                array = np.asarray(fit(img) if fit_size else img.convert("RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(f"{f}: not a readable image ({err})") from None
        if array.shape != IMAGE_SHAPE:
            raise DataError(f"{f}: image is {array.shape[1]}x{array.shape[0]}, CIFAR-10 images are 32x32")
        images[i] = array
        labels[i] = index[f.parent.name]
    return images, labels


def _check(images: np.ndarray, labels: np.ndarray, source: str) -> None:
    if len(images) == 0:
        raise DataError(f"{source}: no images")
    if labels.min() < 0 or labels.max() >= len(CLASSES):
        raise DataError(f"{source}: labels outside 0..9")
