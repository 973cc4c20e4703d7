"""Allocates (and touches) memory 64 MiB at a time, up to 6 GiB, before building anything."""

import numpy as np


def build_model():
    hoard = []
    for _ in range(96):
        hoard.append(np.ones(64 * 2**20, dtype=np.uint8))
    raise RuntimeError(f"the memory hog survived with {len(hoard) * 64} MiB")
