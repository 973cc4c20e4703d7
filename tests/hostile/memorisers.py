"""Helpers for the memoriser cases (ATTACKS.md, round 4): the data they memorise, and their weights.

The memorisers (`thumbnail_memoriser`, `pixel_hash`, `flip_invariant_hash`, `flipped_too`,
`training_too`) store something derived from the public images of a data root and answer by
lookup. Their weights are made from data, never kept: each case's `make.py DATA_ROOT OUT_WEIGHTS`
writes them.

* `public_subset(shared, out)`: a small data root of symbolic links into the shared CIFAR-10
  ImageFolder (`shared/test/<class>/*.jpg`, `shared/train/<class>/*.jpg`): `out/public/test`
  (the first 100 files of each class, sorted names), `out/public/train` (the first 200 of each
  class of train) and `out/private` (train files 4800..4849 of each class, sorted index: images no
  memoriser stores, standing for the instructor's private data).
* `build(case_dir, data_root)`: copies `_shared/memory.py` (the models and makers the memorisers
  share) into the case's folder as `memory.py`, beside its `model.py` and `make.py`, then runs its
  `make.py` with this Python, writing `weights.pt` there (copy the case out of the repository first:
  neither is committed there).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CASES = ("thumbnail_memoriser", "pixel_hash", "flip_invariant_hash", "flipped_too", "training_too")
TEST_PER_CLASS = 100
TRAIN_PER_CLASS = 200
PRIVATE = (4800, 4850)  # sorted indices of the train files of each class that stand for private data
MEMORY = Path(__file__).resolve().with_name("_shared") / "memory.py"


def _link(files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        target = folder / f.name
        if not target.is_symlink():
            target.symlink_to(f.resolve())


def public_subset(shared: Path, out: Path, test: int = TEST_PER_CLASS, train: int = TRAIN_PER_CLASS,
                  private: tuple[int, int] = PRIVATE) -> dict[str, Path]:
    """Make the symlinked data roots under `out`; returns their folders: `public` (the data root the
    memorisers are made from and the judge evaluates: `public/test`, `public/train`), `test`,
    `train` and `private` (an ImageFolder test folder of its own)."""
    shared, out = Path(shared), Path(out)
    folders = {"public": out / "public", "test": out / "public" / "test", "train": out / "public" / "train",
               "private": out / "private"}
    for name in CLASSES:
        test_files = sorted((shared / "test" / name).glob("*.jpg"))
        train_files = sorted((shared / "train" / name).glob("*.jpg"))
        if len(test_files) < test or len(train_files) < max(train, private[1]):
            raise FileNotFoundError(f"{shared}: too few images of class {name}")
        _link(test_files[:test], folders["test"] / name)
        _link(train_files[:train], folders["train"] / name)
        _link(train_files[private[0]:private[1]], folders["private"] / name)
    return folders


def build(case_dir: Path, data_root: Path, timeout: float = 1800) -> Path:
    """Copy _shared/memory.py to `case_dir/memory.py`, then run `case_dir/make.py data_root
    case_dir/weights.pt` with this Python; returns the weights' path."""
    case_dir = Path(case_dir)
    shutil.copy(MEMORY, case_dir / "memory.py")
    weights = case_dir / "weights.pt"
    subprocess.run([sys.executable, str(case_dir / "make.py"), str(data_root), str(weights)], check=True,
                   capture_output=True, timeout=timeout, cwd=case_dir)
    return weights
