"""Compress the baseline CNN: 30 % global magnitude pruning of the group convolutions, then
quantisation-aware fine-tuning with brevitas at 5-bit weights and 5-bit activations,
distilling float baselines.

    python submissions/quant-w5a5-pruned/train.py --data ../shared/data/cifar10-jpg \
        [--init ../baseline-cnn/weights.pt] [--teacher ../baseline-cnn/weights.pt teacher48.pt]

`split` first maps the baseline's float weights into this model's layout (each 3x3
convolution as its centre taps + the rest, see model.py). Starts from the baseline's float
weights (trained first with the baseline's recipe when --init is absent), on the training
images only; writes weights.pt beside this file.
"""

import re
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "baseline-cnn"))
import train as baseline  # noqa: E402  (the shared recipe: data, augmentation, optimiser)

PRUNE = 0.30
EPOCHS = 7.0


def main() -> None:
    baseline.compress_main(HERE, __doc__, prune_amount=PRUNE, epochs=EPOCHS, convert=split)


def split(state: dict) -> dict:
    """The baseline's float weights in this model's layout: each 3x3 convolution W of a group
    becomes `conv` = W without its centre taps W[i, i, 1, 1] and `skip` = those taps, whose
    per-tensor grid (`taps`) spans their range."""
    out = {}
    for key, w in state.items():
        layer = key.removesuffix(".weight")
        if re.fullmatch(r"group\d\.conv\d", layer):
            i = torch.arange(min(w.shape[:2]))
            rest, taps = w.clone(), w[i, i, 1, 1].clone()
            rest[i, i, 1, 1] = 0
            out[f"{layer}.conv.weight"], out[f"{layer}.skip.weight"] = rest, taps.view(-1, 1, 1, 1)
            out[f"{layer}.taps.lo"], out[f"{layer}.taps.hi"] = taps.min(), taps.max()  # the taps' 5-bit grid
        else:
            out[key] = w
    return out


if __name__ == "__main__":
    main()
