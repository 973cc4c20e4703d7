"""The factory fails."""


def build_model():
    raise ValueError("no model today")
