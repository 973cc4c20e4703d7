"""Answers NaN."""

from torch import nn


class NaN(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10] * float("nan")


def build_model():
    return NaN()
