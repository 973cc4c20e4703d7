"""Seven logits instead of ten."""

from torch import nn


def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 7))
