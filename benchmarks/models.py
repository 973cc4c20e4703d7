"""Models for the benchmark: a small CNN and the CIFAR ResNet18.

`small`: widths 32/128/256, BN + GELU,
max-pooling (1.07 M parameters, 48 M MACs). `resnet18` is the CIFAR variant
(3x3 stem, no max-pool; 11,173,962 parameters, 555,676,672 MACs as the judge counts them).
"""

from torch import nn


def conv_bn(c_in, c_out, stride=1):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.GELU())


def small() -> nn.Module:
    return nn.Sequential(
        conv_bn(3, 32), nn.MaxPool2d(2), conv_bn(32, 128), nn.MaxPool2d(2),
        conv_bn(128, 128), conv_bn(128, 256), nn.MaxPool2d(2),
        conv_bn(256, 256), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(256, 10),
    )


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.short = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
        return (y + self.short(x)).relu()


class ResNet18(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [Block(c_in, c_out, stride), Block(c_out, c_out, 1)]
            c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.layers(self.bn1(self.conv1(x)).relu())
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def resnet18() -> nn.Module:
    return ResNet18()
