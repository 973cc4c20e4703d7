"""Exceptions for users, each mapped to an exit status of the command line."""

from __future__ import annotations

EXIT_ELIGIBLE = 0  # evaluated and eligible
EXIT_NOT_ELIGIBLE = 1  # evaluated but not eligible
EXIT_INVALID = 2  # the submission (or the command line) is malformed
EXIT_ERROR = 3  # the submission failed while running, or the harness could not run it
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C (128 + SIGINT, as a shell reports it)


class HarnessError(Exception):
    """Base class: a message for people, and the exit status it maps to."""

    exit_code = EXIT_ERROR


class SubmissionError(HarnessError):
    """The submission is malformed: manifest, files, weights, factory or output shape."""

    exit_code = EXIT_INVALID


class RunError(HarnessError):
    """The submission's code failed while running, or a limit was hit."""

    exit_code = EXIT_ERROR


class DataError(HarnessError):
    """The test data cannot be found, read, or is not CIFAR-10."""

    exit_code = EXIT_ERROR


class ConfigError(HarnessError):
    """The competition config file is malformed."""

    exit_code = EXIT_INVALID


def dtype_hint(message: str) -> str:
    """A word on dtypes when `message` is about float16 against float32, else ''."""
    if "Half" not in message or not any(w in message.lower() for w in ("float", "dtype", "scalar type")):
        return ""
    return ("the harness feeds float32 images and runs the model in float32: keep it float32 (no .half() in "
            "forward) and declare weight_bits and activation_bits 16: the judge then rounds the weights and every "
            "layer's input to float16 itself")
