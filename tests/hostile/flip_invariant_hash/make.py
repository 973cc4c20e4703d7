"""Make flip_invariant_hash's weights from a data root: `python make.py DATA_ROOT OUT_WEIGHTS`.

Decodes DATA_ROOT/test/<class>/* (CIFAR-10's class order, sorted file names in each class) with
Pillow as the judge does. The key of an image is KEYS sums of two mirror pixels (exact levels,
0..510: the pixel at (channel, row, column) plus the one at (channel, row, 31 - column)), at
positions drawn at random until no two test images with different labels share a key; a mirror
image has the same key. The drawing, the hashing of the keys (hash and displace, as CHD) and the
check that every test image is answered right are memory.hash_state's, as for pixel_hash.
"""

import numpy as np
from memory import KEYS, decode, hash_state, main


def draw_positions(rng: np.random.Generator) -> np.ndarray:
    """[2, KEYS] flat positions c * 1024 + row * 32 + column of the image [3, 32, 32]: a pixel of the
    left half (row 0) and its mirror pixel (row 1)."""
    left = rng.choice(3 * 32 * 16, size=KEYS, replace=False)
    c, row, column = left // 512, left // 16 % 32, left % 16
    return np.stack([c * 1024 + row * 32 + column, c * 1024 + row * 32 + 31 - column])


def keys_of(flat: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """[N, KEYS] int64: the model's key, the sums of the mirror pixels."""
    return flat[:, pos[0]].astype(np.int64) + flat[:, pos[1]]


def make(root):
    images, labels = decode(root / "test")
    return hash_state(images, labels, draw_positions, keys_of)


if __name__ == "__main__":
    main(make)
