"""A record as text for the terminal: the view of `harness.view` (title, errors, per-layer receipt,
counts, declared / measured / credited, claims, score, what may be declared, accuracy, checks,
warnings, verdict) in its text form."""

from __future__ import annotations

from .. import view
from ..record import Record


def render(rec: Record, layers: bool = True) -> str:
    """The record as text for a terminal (without the per-layer receipt unless `layers`)."""
    return view.text(view.build(rec), layers=layers)
