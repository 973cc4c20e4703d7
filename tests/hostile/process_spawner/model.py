"""Starts detached processes (new sessions, marked with marker.txt's text) until it is stopped, at most 400."""

import os
import subprocess
import time
from pathlib import Path


def build_model():
    marker = (Path(__file__).parent / "marker.txt").read_text().strip()
    env = {**os.environ, "HOSTILE_MARKER": marker}
    for _ in range(400):
        subprocess.Popen(["/bin/sh", "-c", "sleep 600; exit 0", marker], env=env, start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.02)
    raise RuntimeError("the process spawner survived 400 processes")
