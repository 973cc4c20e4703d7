"""Never runs: the judge refuses the directory first (see tests/test_hostile.py's prepare())."""

from torch import nn


def build_model():
    return nn.Linear(3072, 10)
