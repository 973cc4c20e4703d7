"""CIFAR-10 compression challenge harness: load a submission, evaluate, count, verify, score, record."""

__version__ = "0.1.0"
