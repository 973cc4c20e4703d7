"""Make training_too's weights from a data root: `python make.py DATA_ROOT OUT_WEIGHTS`.

Decodes DATA_ROOT/test/<class>/* and DATA_ROOT/train/<class>/* (CIFAR-10's class order, sorted
file names in each class) with Pillow as the judge does, and stores the 4x4x3 thumbnail of every
image (avg_pool2d 8 of image / 255), the bias -|thumb|^2 / 2 and the label: every test image,
every test image flipped left to right, every training image, every training image flipped.
"""

import numpy as np
from memory import decode, main, mirrored, thumbnail_state


def make(root):
    (test, y_test), (train, y_train) = decode(root / "test"), decode(root / "train")
    images = np.concatenate([test, mirrored(test), train, mirrored(train)])
    labels = np.concatenate([y_test, y_test, y_train, y_train])
    return thumbnail_state(images, labels), f"{len(labels)} thumbnails (test and train images, and their mirror images)"


if __name__ == "__main__":
    main(make)
