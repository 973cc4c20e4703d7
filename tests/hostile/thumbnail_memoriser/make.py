"""Make thumbnail_memoriser's weights from a data root: `python make.py DATA_ROOT OUT_WEIGHTS`.

Decodes DATA_ROOT/test/<class>/* (CIFAR-10's class order, sorted file names in each class) with
Pillow as the judge does, and stores the 4x4x3 thumbnail of every image (avg_pool2d 8 of
image / 255), the bias -|thumb|^2 / 2 and the label.
"""

from memory import decode, main, thumbnail_state


def make(root):
    images, labels = decode(root / "test")
    return thumbnail_state(images, labels), f"{len(labels)} thumbnails"


if __name__ == "__main__":
    main(make)
