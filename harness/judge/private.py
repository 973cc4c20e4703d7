"""`python -m harness private-data PATH`: is a folder of the instructor's images fit to be private data?

It reports what the private check depends on: the images per class (an accuracy over a lopsided
folder weighs some classes more than the test set does), the files Pillow cannot read (an evaluation
with them stops), how many images are resized (`data.fit`), the images that are near-duplicates of
a CIFAR-10 training or test image or of another image of the folder (a memoriser may have stored
them, and a duplicate counts twice), and the standard error that the folder's size gives an
accuracy near 90 %, which widens the gap the check allows.

Near-duplicates are found by thumbnail distance: each image as 8 x 8 x 3 block means of its 32 x 32
pixels (levels 0-255), the root-mean-square difference between two thumbnails, the smaller of the
image's and its mirror's. `NEAR` is set between the distance of a CIFAR-10 image to a re-encoded,
resized copy of itself and the distance of CIFAR-10 images to their nearest other image
(docs/private-data.md has the figures).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..config import load_rules
from ..data import CLASSES, find_training, fit, load_test, private_files
from .checks import SIGMAS, drawn

NEAR = 5.0  # thumbnail RMS distance (levels of 255) under which two images are near-duplicates
BLOCK = 4  # pixels per side of a thumbnail cell: 32 x 32 -> 8 x 8
CHUNK = 256  # images compared at once (CHUNK x 60,000 distances)
TYPICAL = 0.9  # the accuracy at which the standard error is given


def thumbnails(images: np.ndarray) -> np.ndarray:
    """uint8 [N, 32, 32, 3] -> float32 [N, 192]: the mean of each 4 x 4 block of each channel."""
    n, h, w, c = images.shape
    x = images.reshape(n, h // BLOCK, BLOCK, w // BLOCK, BLOCK, c).astype(np.float32).mean(axis=(2, 4))
    return x.reshape(n, -1)


def nearest(query: np.ndarray, base: np.ndarray, skip_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For each thumbnail of `query`, the RMS distance to its nearest thumbnail in `base`, and its index."""
    sq = (base**2).sum(1)
    dist, where = np.empty(len(query), np.float32), np.empty(len(query), np.int64)
    for i in range(0, len(query), CHUNK):
        q = query[i:i + CHUNK]
        d = (q**2).sum(1, keepdims=True) - 2 * q @ base.T + sq  # squared distances
        if skip_self:
            d[np.arange(len(q)), np.arange(i, i + len(q))] = np.inf
        where[i:i + CHUNK] = d.argmin(1)
        dist[i:i + CHUNK] = np.sqrt(np.maximum(d.min(1), 0) / base.shape[1])
    return dist, where


def report(path: str | Path, data: str | Path | None = None) -> tuple[str, dict]:
    """The report on the folder at `path`, as text and as a dict; `data`: the CIFAR-10 root to search."""
    from PIL import Image, UnidentifiedImageError

    folder, files = private_files(path)
    images, names, unreadable, resized = [], [], [], 0
    for f in files:
        try:
            with Image.open(f) as img:
                resized += img.size != (32, 32)
                images.append(np.asarray(fit(img)))
                names.append(f.relative_to(folder).as_posix())
        except (OSError, UnidentifiedImageError) as err:
            unreadable.append(f"{f.relative_to(folder).as_posix()}: {err}")
    counts = {c: sum(1 for n in names if n.startswith(f"{c}/")) for c in CLASSES}
    out = {"folder": str(folder), "images": len(names), "per_class": counts, "unreadable": unreadable,
           "resized": resized, "near_duplicates": [], "duplicates_within": []}
    if names:
        stacked = np.stack(images)
        thumbs, mirrored = thumbnails(stacked), thumbnails(stacked[:, :, ::-1])
        if data is not None:
            out["near_duplicates"] = _near_cifar(thumbs, mirrored, names, data)
        if len(names) > 1:
            dist, where = nearest(thumbs, thumbs, skip_self=True)
            out["duplicates_within"] = [{"image": names[i], "same_as": names[int(where[i])],
                                         "distance": round(float(dist[i]), 2)}
                                        for i in np.flatnonzero(dist < NEAR) if i < where[i]]
    rules = load_rules()
    out["drawn"] = count = drawn(rules.private_images, len(names))  # what one evaluation predicts
    se = math.sqrt(TYPICAL * (1 - TYPICAL) / count) if names else float("nan")
    out["standard_error"] = se
    out["allowed_gap"] = rules.private_gap + SIGMAS * math.sqrt(se**2 + TYPICAL * (1 - TYPICAL) / 10_000)
    return _text(out, data), out


def _near_cifar(thumbs: np.ndarray, mirrored: np.ndarray, names: list[str], data) -> list[dict]:
    """The images within `NEAR` of a CIFAR-10 test or training image (or of its mirror)."""
    found = []
    test = load_test(data)
    train, _ = find_training(data)
    for split, ref in (("test", test), ("train", train)):
        if ref is None:
            continue
        base = thumbnails(np.asarray(ref.images()))
        d1, w1 = nearest(thumbs, base)
        d2, w2 = nearest(mirrored, base)
        dist, where = np.minimum(d1, d2), np.where(d1 <= d2, w1, w2)
        for i in np.flatnonzero(dist < NEAR):
            found.append({"image": names[i], "split": split, "cifar_class": CLASSES[int(ref.labels[where[i]])],
                          "distance": round(float(dist[i]), 2)})
    return found


def _text(r: dict, data) -> str:
    n = r["images"]
    lines = [f"{r['folder']}: {n:,} readable images, {len(r['unreadable'])} unreadable"]
    for c, k in r["per_class"].items():
        lines.append(f"  {c:11} {k:6,}  {k / n:6.1%}" if n else f"  {c:11} {k:6,}")
    if n and (spread := max(r["per_class"].values()) - min(r["per_class"].values())) > 0.2 * n / 10:
        lines.append(f"  the classes differ by up to {spread:,} images: collect about {n // 10:,} of each")
    for u in r["unreadable"]:
        lines.append(f"  unreadable: {u}")
    lines.append(f"  {r['resized']:,} not 32 x 32: brought to 32 x 32 (the centred square, Lanczos resize)")
    if data is None:
        lines.append("near-duplicates of CIFAR-10: not searched (give --data, the CIFAR-10 root)")
    else:
        found = len(r["near_duplicates"])
        lines.append(f"near-duplicates of CIFAR-10 images (thumbnail distance below {NEAR}): {found}"
                     + ("; remove them" if found else ""))
        lines += [f"  {d['image']} ~ a CIFAR-10 {d['split']} image of class {d['cifar_class']} "
                  f"(distance {d['distance']})" for d in r["near_duplicates"]]
    lines.append(f"duplicates within the folder: {len(r['duplicates_within'])}")
    lines += [f"  {d['image']} ~ {d['same_as']} (distance {d['distance']})" for d in r["duplicates_within"]]
    if n:
        lines.append(f"each evaluation draws {r['drawn']:,} of them (private_images): the standard error of an "
                     f"accuracy near {TYPICAL:.0%} is {r['standard_error']:.2%}, and with the bundled private_gap the "
                     f"check allows about {r['allowed_gap']:.1%} below the test accuracy")
    return "\n".join(lines)
