"""Honest models for calibrating the judge's memorisation checks (unseen, private, flip, shift).

Trains variants of the baseline CNN that are trained differently from the examples, on a
public/held-back split of the CIFAR-10 training images, then measures every model (these and
the examples in submissions/) in plain torch, without the judge:

    python benchmarks/calibrate.py --shared ../shared/data/cifar10-jpg --work /tmp/calibration \
        [--variants few-epochs no-aug] [--epochs few-epochs=5] [--figures-only | --no-figures]

Under --work it links the split (symbolic links into --shared): public/test (the test set),
public/train (the training images but the last HELD_BACK of each class, sorted by name) and
heldback/<class>/ (those, the stand-in for private data no variant trained on); it writes the
variants into models/ and the figures into figures.json. The judge's own figures for the same
models: `python -m harness evaluate WORK/models/*/ --data WORK/public --private-data WORK/heldback`
(docs/judging.md has both).

Variants (each written as a complete submission: model.py and a submission.yaml copied from
baseline-cnn, team `calibration`, and weights.pt):

  few-epochs  the baseline recipe (submissions/baseline-cnn/train.py), fewer epochs
  strong-aug  the baseline recipe plus colour jitter and a 12x12 cutout on top of flips and translations
  distilled   from scratch on the baseline's augmentation, the loss mixing labels with the soft
              predictions of submissions/baseline-cnn/weights.pt as `finetune --distill` does (that
              teacher saw all 50,000 training images, the held-back ones included)
  no-aug      the baseline recipe without flips and translations

Figures per model: accuracy on the whole test set, on 1,000 random public training images, on
the held-back images; the flip check (the same random test images, original and mirrored) and
the shift check (moved one pixel in one of 8 directions, the border repeating the edge), both in
the model's eval mode (what the judge sees) and, where the model has one, through its
single-view `logits` (without the test-time flip averaging). Preprocessing is the judge's:
uint8 HWC / 255, (x - mean) / std from submission.yaml, NCHW float32.

Training runs in float32 unless --bf16: the baseline's bfloat16 autocast is emulated, several
times slower, on CPUs without AVX512-BF16.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image
from torch import nn

from harness.judge.checks import shift  # the judge's own one-pixel shift

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "submissions" / "baseline-cnn"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
VARIANTS = {"few-epochs": 3.0, "strong-aug": 2.0, "distilled": 1.5, "no-aug": 2.0}  # default epochs
CHECK_IMAGES = 500
TRAIN_SAMPLE = 1000
HELD_BACK = 200  # training images of each class no variant trains on


def load_module(path: Path, name: str):
    """A script as a module under a unique name; baseline-cnn's train.py imports `model` from its
    own folder through sys.path, which is restored (and `model` forgotten) afterwards."""
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
        sys.modules.pop("model", None)
    return module


sys.path.insert(0, str(REPO))  # train.py imports harness.data
baseline = load_module(BASELINE / "train.py", "_calibrate_baseline_train")


# ---------------------------------------------------------------------------------------- training


@torch.no_grad()
def strong_augment(x: torch.Tensor, device: str, flip: torch.Tensor, cutout: int = 12) -> torch.Tensor:
    """The baseline's flips and translations, then colour jitter (brightness, contrast, saturation,
    each x U(0.6, 1.4)) and one `cutout` x `cutout` square (clipped at the border) set to the mean."""
    x = baseline.augment(x, device, flip)
    n = len(x)
    mean = torch.tensor(baseline.MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(baseline.STD, device=device).view(1, 3, 1, 1)
    grey = torch.tensor((0.299, 0.587, 0.114), device=device).view(1, 3, 1, 1)
    out = torch.empty_like(x)
    for i in range(0, n, 4096):  # in chunks: a few temporaries of the whole set would be gigabytes
        px = x[i : i + 4096] * std + mean
        k = len(px)
        b, c, s = (torch.empty(3, k, 1, 1, 1, device=device).uniform_(0.6, 1.4)).unbind(0)
        px = px * b
        m = (px * grey).sum(1, keepdim=True).mean((2, 3), keepdim=True)
        px = (px - m) * c + m
        g = (px * grey).sum(1, keepdim=True)
        px = (g + (px - g) * s).clamp(0, 1)
        cy, cx = torch.randint(0, 32, (2, k, 1, 1), device=device)
        rows, cols = torch.arange(32, device=device).view(1, 32, 1), torch.arange(32, device=device).view(1, 1, 32)
        top, left = cy - cutout // 2, cx - cutout // 2
        hole = (rows >= top) & (rows < top + cutout) & (cols >= left) & (cols < left + cutout)
        out[i : i + k] = ((px - mean) / std).masked_fill(hole.unsqueeze(1), 0.0)
    return out


def no_augment(x: torch.Tensor, device: str, flip: torch.Tensor) -> torch.Tensor:
    return x


def train_one(name: str, epochs: float, args, x: torch.Tensor, y: torch.Tensor, test) -> dict:
    torch.manual_seed(args.seed)
    device = "cpu"
    model = baseline.build_model().to(device).to(memory_format=torch.channels_last)
    start = time.time()
    if name == "few-epochs":
        baseline.train(model, x, y, epochs, device)
    elif name == "strong-aug":
        baseline.train(model, x, y, epochs, device, strong_augment)
    elif name == "no-aug":
        baseline.train(model, x, y, epochs, device, no_augment)
    elif name == "distilled":
        teacher = baseline.build_model().to(device).to(memory_format=torch.channels_last)
        teacher.load_state_dict(torch.load(args.teacher, map_location=device, weights_only=True))
        for p in teacher.parameters():
            p.requires_grad = False
        baseline.train(model, x, y, epochs, device, teacher=teacher.eval(), distill=baseline.DISTILL)
    else:
        raise ValueError(name)
    seconds = time.time() - start
    model.eval()
    folder = Path(args.out) / name
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "weights.pt")
    shutil.copyfile(BASELINE / "model.py", folder / "model.py")
    manifest = (BASELINE / "submission.yaml").read_text()
    manifest = re.sub(r"(?m)^team:.*$", "team: calibration", manifest)
    manifest = re.sub(r"(?m)^name:.*$", f"name: {name}", manifest)
    (folder / "submission.yaml").write_text(manifest)
    acc = accuracy(model, test[0], test[1], baseline.MEAN, baseline.STD)
    row = dict(name=name, epochs=epochs, steps=int(epochs * len(x) / baseline.HYP["batch"]),
               seconds=round(seconds, 1), test_accuracy=acc)
    print(f"== {name}: {epochs:g} epochs, {seconds:.0f}s, test accuracy {acc:.4f}", flush=True)
    return row


# -------------------------------------------------------------------------------------- evaluation


def decode(files: list[Path]) -> np.ndarray:
    return np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.uint8) for f in files])


def image_files(folder: Path) -> tuple[list[Path], np.ndarray]:
    """Sorted image files of an ImageFolder split in CIFAR-10's class order, and their labels."""
    files, labels = [], []
    for k, c in enumerate(CLASSES):
        names = sorted(p for p in (folder / c).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        files += names
        labels += [k] * len(names)
    return files, np.asarray(labels, dtype=np.int64)


@torch.no_grad()
def predict(forward, images: np.ndarray, mean, std, batch: int = 500) -> np.ndarray:
    mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    preds = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch])).permute(0, 3, 1, 2).float() / 255
        preds.append(forward(((x - mean) / std).contiguous()).argmax(1).numpy())
    return np.concatenate(preds)


def accuracy(forward, images: np.ndarray, labels: np.ndarray, mean, std) -> float:
    return float((predict(forward, images, mean, std) == labels).mean())


def load_submission(folder: Path) -> tuple[nn.Module, list, list]:
    manifest = yaml.safe_load((folder / "submission.yaml").read_text())
    spec = manifest.get("model") or {}
    module = load_module(folder / spec.get("code", "model.py"), f"_calibrate_{folder.parent.name}_{folder.name}")
    model = getattr(module, spec.get("factory", "build_model"))()
    model.load_state_dict(torch.load(folder / spec.get("weights", "weights.pt"), map_location="cpu",
                                     weights_only=True))
    norm = spec.get("normalize") or {}
    return model.eval(), norm.get("mean", [0.0, 0.0, 0.0]), norm.get("std", [1.0, 1.0, 1.0])


class EvalData:
    """The images every model is measured on, decoded once."""

    def __init__(self, data: Path, heldback: Path, seed: int):
        files, self.test_labels = image_files(data / "test")
        self.test = decode(files)
        files, labels = image_files(data / "train")
        pick = np.sort(np.random.default_rng(seed).choice(len(files), size=TRAIN_SAMPLE, replace=False))
        self.train, self.train_labels = decode([files[i] for i in pick]), labels[pick]
        files, self.heldback_labels = image_files(heldback)
        self.heldback = decode(files)
        rng = np.random.default_rng(seed + 1)
        self.flip_idx = np.sort(rng.choice(len(self.test), size=CHECK_IMAGES, replace=False))
        self.flipped = np.ascontiguousarray(self.test[self.flip_idx][:, :, ::-1])
        rng = np.random.default_rng(seed + 2)
        self.shift_idx = np.sort(rng.choice(len(self.test), size=CHECK_IMAGES, replace=False))
        self.shifted = shift(self.test[self.shift_idx], rng)


def figures(model: nn.Module, mean, std, d: EvalData) -> dict:
    start = time.time()
    test = predict(model, d.test, mean, std)
    row = dict(test=float((test == d.test_labels).mean()),
               public_train=accuracy(model, d.train, d.train_labels, mean, std),
               heldback=accuracy(model, d.heldback, d.heldback_labels, mean, std))
    for check, idx, moved in (("flip", d.flip_idx, d.flipped), ("shift", d.shift_idx, d.shifted)):
        labels = d.test_labels[idx]
        orig, new = test[idx] == labels, predict(model, moved, mean, std) == labels
        row[check] = dict(original=float(orig.mean()), moved=float(new.mean()), gap=float(orig.mean() - new.mean()),
                          lost=int((orig & ~new).sum()), gained=int((~orig & new).sum()))
        if hasattr(model, "logits"):  # the same check through one view, without test-time flip averaging
            orig = predict(model.logits, d.test[idx], mean, std) == labels
            new = predict(model.logits, moved, mean, std) == labels
            row[f"{check}_single_view"] = dict(original=float(orig.mean()), moved=float(new.mean()),
                                               gap=float(orig.mean() - new.mean()),
                                               lost=int((orig & ~new).sum()), gained=int((~orig & new).sum()))
    row["seconds"] = round(time.time() - start, 1)
    return row


def print_table(rows: dict) -> None:
    head = (f"{'model':<20} {'test':>6} {'pubtr':>6} {'held':>6} {'tr-held':>7} | {'flip o':>6} {'flip f':>6} "
            f"{'1v o':>6} {'1v f':>6} | {'shft o':>6} {'shft s':>6} {'1v o':>6} {'1v s':>6}")
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        parts = [f"{name:<20} {r['test']:6.2%} {r['public_train']:6.2%} {r['heldback']:6.2%} "
                 f"{r['public_train'] - r['heldback']:+7.2%} |"]
        for check in ("flip", "shift"):
            one = r.get(f"{check}_single_view", dict(original=float("nan"), moved=float("nan")))
            parts.append(f"{r[check]['original']:6.2%} {r[check]['moved']:6.2%} {one['original']:6.2%} "
                         f"{one['moved']:6.2%}")
        print(" ".join(parts[:1]) + " " + " | ".join(parts[1:]))
    print("(1v: single view through model.logits, without the eval-mode flip averaging)")


# ------------------------------------------------------------------------------------------- main


def split(shared: Path, work: Path) -> tuple[Path, Path, Path]:
    """Link the public/held-back split under `work` (once); returns (public root, heldback, models)."""
    public, heldback = work / "public", work / "heldback"
    if not public.is_dir():
        (public / "train").mkdir(parents=True)
        (public / "test").symlink_to((shared / "test").resolve())
        for c in CLASSES:
            files = sorted((shared / "train" / c).iterdir())
            for folder, part in ((public / "train" / c, files[:-HELD_BACK]), (heldback / c, files[-HELD_BACK:])):
                folder.mkdir(parents=True)
                for f in part:
                    (folder / f.name).symlink_to(f.resolve())
    return public, heldback, work / "models"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data" / "cifar10-jpg"),
                    help="the CIFAR-10 ImageFolder root (train/ and test/)")
    ap.add_argument("--work", default="/tmp/calibration", help="where the split, models and figures go")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--epochs", nargs="+", default=[], metavar="NAME=EPOCHS", help="per-variant epochs")
    ap.add_argument("--teacher", default=str(BASELINE / "weights.pt"), help="the distilled variant's teacher")
    ap.add_argument("--examples", nargs="*", default=[str(p) for p in sorted((REPO / "submissions").iterdir())
                                                       if (p / "submission.yaml").is_file()],
                    help="further submissions to measure (default: the examples)")
    ap.add_argument("--figures-only", action="store_true", help="measure the trained variants and examples only")
    ap.add_argument("--no-figures", action="store_true", help="train only")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="train under bfloat16 autocast, as the baseline does")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    epochs = dict(VARIANTS)
    for item in args.epochs:
        name, _, value = item.partition("=")
        if name not in VARIANTS:
            ap.error(f"--epochs: no variant {name}")
        epochs[name] = float(value)
    if not args.bf16:
        baseline.autocast = lambda device: torch.autocast(device, dtype=torch.bfloat16, enabled=False)

    work = Path(args.work)
    data, heldback, out = split(Path(args.shared), work)
    args.out, json_path = str(out), work / "figures.json"
    trained = {}
    log = out / "training.json"
    if log.is_file():
        trained = json.loads(log.read_text())
    if not args.figures_only:
        x, y = baseline.load_train(str(data), "cpu")
        files, labels = image_files(data / "test")
        test = (decode(files), labels)
        print(f"training on {len(x)} images of {data / 'train'}", flush=True)
        for name in args.variants:
            row = train_one(name, epochs[name], args, x, y, test)
            trained[name] = row
            log.write_text(json.dumps(trained, indent=1))
        del x, y
    if args.no_figures:
        return
    d = EvalData(data, heldback, args.seed)
    folders = [out / n for n in VARIANTS if (out / n / "weights.pt").is_file()] + [Path(p) for p in args.examples]
    rows = {}
    for folder in folders:
        model, mean, std = load_submission(folder)
        rows[folder.name] = figures(model, mean, std, d)
        if folder.name in trained and folder.parent == out:
            rows[folder.name]["training"] = trained[folder.name]
        print(f"measured {folder} in {rows[folder.name]['seconds']:.0f}s", flush=True)
    print_table(rows)
    json_path.write_text(json.dumps(dict(
        images=dict(test=len(d.test), public_train=TRAIN_SAMPLE, heldback=len(d.heldback), flip=CHECK_IMAGES,
                    shift=CHECK_IMAGES, seed=args.seed), models=rows), indent=1))
    print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
