"""What the memoriser cases of tests/hostile/ share (ATTACKS.md, round 4): their lookup models and
the code that makes their weights from a data root.

This file is not a case. tests/hostile/memorisers.py (`build`) copies it into the folder of each
memoriser (thumbnail_memoriser, pixel_hash, flip_invariant_hash, flipped_too, training_too) as
`memory.py`, beside its model.py and make.py: the harness puts a submission's folder first on
sys.path, and Python puts a script's folder first, so the case's `from memory import ...` finds
that copy. Each case keeps its attack in its own files: which images it stores, how its key is
read, and the hand counts (the COUNTS header of its model.py). Every attribute name here is a
state_dict key, and every step of the forwards is counted in those headers: change none of them.

The models (what the judge runs):
  weights_beside(file)  the state saved as weights.pt beside `file` (a case's model.py): its shapes
                        size the model before the judge loads it
  ThumbnailModel        the nearest stored 4x4x3 thumbnail (avg_pool2d 8x8), ranked as
                        t.T_i - |T_i|^2/2 (one matrix product with a bias), argmax, its label looked
                        up, one-hot; `sized(state)`: the model for a saved state
  HashModel             a perfect hash (hash and displace, as CHD) of a key read from the exact
                        levels round(x * 255) at stored positions; a subclass defines `key(levels)`
                        ([N, K] int64); `sized(state)` as above
The makers (what make.py runs, with numpy and Pillow):
  decode(folder)        uint8 images [N, 32, 32, 3] and labels [N] of an ImageFolder split, decoded
                        as the judge does
  mirrored(images)      the images flipped left to right
  thumbnail_state(images, labels)  ThumbnailModel's weights: one row an image
  hash_state(images, labels, draw_positions, keys_of)  HashModel's weights: positions drawn until
                        the keys separate the labels, then hashed and displaced; checked against
                        every image
  main(make)            `python make.py DATA_ROOT OUT_WEIGHTS`: make(DATA_ROOT) -> (weights, what they
                        hold), saved, and a line about them
"""

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SUFFIXES = (".jpg", ".jpeg", ".png")
KEYS = 8  # pixels (or mirror pairs) hashed
LOAD = 1.0  # slots per distinct key
BUCKET = 4  # distinct keys per bucket, on average
SEED = 0


def weights_beside(file: str) -> dict[str, torch.Tensor]:
    """The state saved as weights.pt beside `file`, on the CPU."""
    return torch.load(Path(file).with_name("weights.pt"), map_location="cpu", weights_only=True)


class ThumbnailModel(nn.Module):
    """Operators: avg_pool2d, view, t + addmm (F.linear), argmax, index.Tensor (labels[idx]), unsqueeze,
    arange, eq.Tensor, _to_copy. Every stored number counts in w; honest 32-bit float weights, no
    pruning declared (a few thumbnail values are exact zeros, black blocks: measured as a little
    pruning, not claimed)."""

    def __init__(self, rows: int):
        super().__init__()
        self.thumbs = nn.Parameter(torch.zeros(rows, 48))  # avg_pool2d(image / 255, 8), flattened
        self.bias = nn.Parameter(torch.zeros(rows))  # -|thumb|^2 / 2
        self.labels = nn.Parameter(torch.zeros(rows))  # class index 0..9, as a float

    @classmethod
    def sized(cls, state: dict[str, torch.Tensor]) -> "ThumbnailModel":
        return cls(state["labels"].numel())

    def forward(self, x):
        t = F.avg_pool2d(x, 8).flatten(1)  # [N, 48]
        nearest = F.linear(t, self.thumbs, self.bias).argmax(1)  # t.T - |T|^2/2: the nearest thumbnail
        label = self.labels[nearest]  # [N]
        classes = torch.arange(10, dtype=x.dtype, device=x.device)
        return (label.unsqueeze(1) == classes).to(x.dtype)  # one-hot logits


class HashModel(nn.Module):
    """pos: the stored positions ([K], or [R, K]: R pixels a key number); mult: [3, K]. A subclass
    defines key(levels)."""

    def __init__(self, positions: tuple[int, ...], buckets: int, slots: int):
        super().__init__()
        self.register_buffer("pos", torch.zeros(positions, dtype=torch.int64))  # c * 1024 + row * 32 + column
        self.register_buffer("mult", torch.zeros(3, positions[-1], dtype=torch.int64))
        self.disp = nn.Parameter(torch.zeros(buckets))
        self.labels = nn.Parameter(torch.zeros(slots))
        self.buckets, self.slots = buckets, slots

    @classmethod
    def sized(cls, state: dict[str, torch.Tensor]) -> "HashModel":
        return cls(tuple(state["pos"].shape), state["disp"].numel(), state["labels"].numel())

    def key(self, levels):
        """[N, K] int64 from the exact levels [N, 3072]."""
        raise NotImplementedError

    def forward(self, x):
        levels = torch.round(x.flatten(1) * 255)  # exact 0..255
        key = self.key(levels)  # [N, K]
        g = (key.unsqueeze(1) * self.mult).sum(2)  # [N, 3]: three hashes
        d = self.disp[g[:, 0] % self.buckets].long()
        slot = (g[:, 1] % self.slots + d * (g[:, 2] % (self.slots - 1) + 1)) % self.slots
        label = self.labels[slot]
        classes = torch.arange(10, dtype=x.dtype, device=x.device)
        return (label.unsqueeze(1) == classes).to(x.dtype)  # one-hot logits


def decode(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 32, 32, 3] and labels [N] of an ImageFolder split (CIFAR-10's class order,
    sorted file names in each class), decoded with Pillow as the judge does."""
    from PIL import Image  # here, not at the top: the models never decode

    images, labels = [], []
    for k, name in enumerate(CLASSES):
        for f in sorted((folder / name).iterdir()):
            if f.suffix.lower() in SUFFIXES:
                with Image.open(f) as img:
                    images.append(np.asarray(img.convert("RGB")))
                labels.append(k)
    return np.stack(images), np.asarray(labels)


def mirrored(images: np.ndarray) -> np.ndarray:
    """[N, 32, 32, 3] images flipped left to right."""
    return images[:, :, ::-1]


def thumbnails(images: np.ndarray) -> torch.Tensor:
    """[N, 48]: the model's avg_pool2d(x, 8).flatten(1) of x = image / 255."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    return F.avg_pool2d(x, 8).flatten(1)


def thumbnail_state(images: np.ndarray, labels: np.ndarray) -> dict[str, torch.Tensor]:
    """ThumbnailModel's weights: the thumbnail, the bias -|thumb|^2 / 2 and the label of every image."""
    thumbs = thumbnails(images)
    return {"thumbs": thumbs, "bias": -0.5 * (thumbs**2).sum(1), "labels": torch.from_numpy(labels).float()}


def distinct(keys: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct keys and their labels, or None when a key is shared by two labels."""
    pairs = np.unique(np.concatenate([keys, labels[:, None]], 1), axis=0)
    uniq, first = np.unique(pairs[:, :-1], axis=0, return_index=True)
    return (uniq, pairs[first, -1]) if len(uniq) == len(pairs) else None


def displace(g: np.ndarray, labels: np.ndarray, slots: int, buckets: int, limit: int) -> tuple | None:
    """(displacements [B], label table [P]) placing every key on a slot of its label, or None."""
    h1, h2 = g[:, 1] % slots, 1 + g[:, 2] % (slots - 1)
    bucket = g[:, 0] % buckets
    table = np.full(slots, -1, dtype=np.int64)
    disp = np.zeros(buckets, dtype=np.int64)
    members = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[members], np.arange(buckets + 1))
    for b in sorted(range(buckets), key=lambda b: bounds[b] - bounds[b + 1]):
        idx = members[bounds[b]:bounds[b + 1]]
        if idx.size == 0:
            continue
        for d in range(limit):
            s = (h1[idx] + d * h2[idx]) % slots
            held = table[s]
            if not np.all((held == -1) | (held == labels[idx])):
                continue
            order = np.argsort(s)
            same = s[order][1:] == s[order][:-1]
            if np.any(same & (labels[idx][order][1:] != labels[idx][order][:-1])):
                continue
            table[s], disp[b] = labels[idx], d
            break
        else:
            return None
    return disp, np.where(table < 0, 0, table)


def answer(flat: np.ndarray, state: dict, keys_of: Callable) -> np.ndarray:
    """What HashModel answers, in numpy (the check of make)."""
    g = keys_of(flat, state["pos"].numpy()) @ state["mult"].numpy().T
    slots, buckets = state["labels"].numel(), state["disp"].numel()
    d = state["disp"].numpy().astype(np.int64)[g[:, 0] % buckets]
    return state["labels"].numpy()[(g[:, 1] % slots + d * (1 + g[:, 2] % (slots - 1))) % slots].astype(np.int64)


def hash_state(images: np.ndarray, labels: np.ndarray, draw_positions: Callable,
               keys_of: Callable) -> tuple[dict, str]:
    """HashModel's weights for these images. draw_positions(rng) -> the positions `pos` (flat
    c * 1024 + row * 32 + column of the image [3, 32, 32]), keys_of(flat [N, 3072] uint8, pos) ->
    [N, KEYS] int64 (the model's key): positions are drawn (at most 1000 times) until no two images
    with different labels share a key; then the distinct keys are hashed, g = key . mult (mult: 3
    rows of random integers), bucket = g0 mod B, slot = (g1 mod P + d[bucket] (1 + g2 mod (P - 1)))
    mod P with P = LOAD x the distinct keys and B = the distinct keys // BUCKET; buckets from the
    largest down, each gets the first displacement d whose slots are free or already hold the same
    label. Stored: the positions, the multipliers, the displacements and the label table; checked
    to answer every image right. Returns them and what was found."""
    flat = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # [N, 3072]: c * 1024 + row * 32 + column
    rng = np.random.default_rng(SEED)
    draws, found = 0, None
    while found is None:
        if draws == 1000:
            raise SystemExit(f"no {KEYS} positions separate the labels in 1000 draws")
        pos, draws = draw_positions(rng), draws + 1
        found = distinct(keys_of(flat, pos), labels)
    keys, key_labels = found
    slots = max(int(LOAD * len(keys)), 11)
    buckets = max(len(keys) // BUCKET, 1)
    placed = None
    for _ in range(100):
        mult = rng.integers(1, 2**31, size=(3, KEYS), dtype=np.int64)
        placed = displace(keys @ mult.T, key_labels, slots, buckets, limit=20 * slots)
        if placed is not None:
            break
    if placed is None:
        raise SystemExit("no displacement found")
    disp, table = placed
    state = {"pos": torch.from_numpy(pos), "mult": torch.from_numpy(mult),
             "disp": torch.from_numpy(disp).float(), "labels": torch.from_numpy(table).float()}
    assert disp.max() < 2**24 and (answer(flat, state, keys_of) == labels).all()
    return state, (f"positions after {draws} draws, {len(keys)} distinct keys, {buckets} buckets, {slots} slots, "
                   f"largest displacement {disp.max()}")


def main(make: Callable[[Path], tuple[dict, str]]) -> None:
    """`python make.py DATA_ROOT OUT_WEIGHTS`: make(Path(DATA_ROOT)) -> (state, what it holds), saved
    to OUT_WEIGHTS."""
    root, out = sys.argv[1:3]
    state, what = make(Path(root))
    torch.save(state, out)
    print(f"{out}: {what}")
