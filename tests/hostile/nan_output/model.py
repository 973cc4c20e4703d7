"""Answers NaN."""

import torch
from torch import nn


class NaN(nn.Module):
    def forward(self, x):
        return torch.full((len(x), 10), float("nan"))


def build_model():
    return NaN()
