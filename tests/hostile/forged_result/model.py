"""Sends its own result.json, with garbage in it, and exits at once (channel.py: every way it can)."""

import json
import os

from channel import forge


def build_model():
    forged = {"ok": True, "params": "very few", "macs": -1, "uncounted": 3, "layers": "none",
              "measured": {"weight_bits": "one"}, "predictions": "all right"}
    forge(json.dumps(forged).encode())
    os._exit(0)
