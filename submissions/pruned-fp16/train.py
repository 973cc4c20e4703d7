"""Prune the baseline CNN: 60 % global magnitude pruning of the convolutions (unstructured),
then fine-tuning with the masks held, in float (evaluated at float16).

    python submissions/pruned-fp16/train.py --data ../shared/data/cifar10-jpg [--init ../baseline-cnn/weights.pt]

Starts from the baseline's float weights (trained first with the baseline's recipe when
--init is absent), on the training images only; writes weights.pt beside this file.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "baseline-cnn"))
import train as baseline  # noqa: E402  (the shared recipe: data, augmentation, optimiser)

PRUNE = 0.60
EPOCHS = 2.0


def main() -> None:
    baseline.compress_main(HERE, __doc__, prune_amount=PRUNE, epochs=EPOCHS)


if __name__ == "__main__":
    main()
