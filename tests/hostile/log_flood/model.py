"""Prints without end."""

import sys


def build_model():
    line = "spam " * 200_000 + "\n"
    while True:
        sys.stdout.write(line)
