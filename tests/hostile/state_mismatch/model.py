"""A linear model; the test saves weights with a missing and an unexpected key."""

from torch import nn


def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 10))
