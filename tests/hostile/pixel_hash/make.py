"""Make pixel_hash's weights from a data root: `python make.py DATA_ROOT OUT_WEIGHTS`.

Decodes DATA_ROOT/test/<class>/* (CIFAR-10's class order, sorted file names in each class) with
Pillow as the judge does. The key of an image is KEYS pixel values (exact levels 0..255) at
positions drawn at random (channel, row, column) until no two test images with different labels
share a key. memory.hash_state draws them, hashes the keys without a conflict of labels (hash and
displace, as CHD), stores the positions, the multipliers, the displacements (B) and the label
table (P slots), and checks that the table answers every test image right.
"""

import numpy as np
from memory import KEYS, decode, hash_state, main


def draw_positions(rng: np.random.Generator) -> np.ndarray:
    """[KEYS] flat positions c * 1024 + row * 32 + column of the image [3, 32, 32]."""
    return rng.choice(3 * 32 * 32, size=KEYS, replace=False)


def keys_of(flat: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """[N, KEYS] int64: the model's key, the pixels at those positions."""
    return flat[:, pos].astype(np.int64)


def make(root):
    images, labels = decode(root / "test")
    return hash_state(images, labels, draw_positions, keys_of)


if __name__ == "__main__":
    main(make)
