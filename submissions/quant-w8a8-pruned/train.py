"""Compress the baseline CNN: 30 % global magnitude pruning of the convolutions, then
quantisation-aware fine-tuning with brevitas at 8-bit weights and 8-bit activations.

    python submissions/quant-w8a8-pruned/train.py --data ../shared/data/cifar10-jpg [--init ../baseline-cnn/weights.pt]

Starts from the baseline's float weights (trained first with the baseline's recipe when
--init is absent), on the training images only; writes weights.pt beside this file.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "baseline-cnn"))
import train as baseline  # noqa: E402  (the shared recipe: data, augmentation, optimiser)

PRUNE = 0.30
EPOCHS = 2.0


def main() -> None:
    baseline.compress_main(HERE, __doc__, prune_amount=PRUNE, epochs=EPOCHS)


if __name__ == "__main__":
    main()
