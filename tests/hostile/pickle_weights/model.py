"""A harmless model; the test replaces weights.pt with a pickle that would run a shell command."""

from torch import nn


def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 10))
