# HONEST: params=30,730, macs=30,720 (per image), 32 bits: one Linear(3072, 10) (3072*10 + 10 params,
#   3072*10 MACs) whose logits are added with weight 0. It never looks at the image's content:
#   the class comes from the image's position in the stream of prediction batches.
"""Hostile case order_lookup: predicts each image's class from its position in the test set,
exploiting that the test images arrive sorted by class (ImageFolder order: 10 per class here,
1,000 per class on the real set) in batches that start at multiples of the batch size.

Only prediction passes advance the position (inference mode on, no dispatch mode, more than 16
images). The first such batch tells the set's size: smaller than the judge's batch (250 on a CPU,
1,000 on CUDA) means the whole set came in one batch; otherwise it is CIFAR-10's 10,000. After
the whole set, the next pass is the flip subset (min(1,000, size) sorted indices), read the same way.
"""

import torch
from torch import nn

from networks import seeded_linear


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = seeded_linear(3072, 10, seed=23)  # its logits count with weight 0
        self.total = None  # images in the current pass
        self.pos = 0

    def forward(self, x):
        n = x.shape[0]
        logits = 0.0 * self.fc(x.flatten(1))
        predicting = torch.is_inference_mode_enabled() and torch._C._len_torch_dispatch_stack() == 0 and n > 16
        if not predicting:
            return logits
        if self.total is None:
            self.total = n if n not in (250, 1000) else 10_000
            self.pos = 0
        per_class = max(self.total // 10, 1)
        cls = ((self.pos + torch.arange(n, device=x.device)) // per_class).clamp(max=9)
        self.pos += n
        if self.pos >= self.total:  # the next pass is the flip subset
            self.total, self.pos = min(1000, self.total), 0
        return logits + 10.0 * torch.nn.functional.one_hot(cls, 10).to(logits.dtype)


def build_model():
    return Model()
