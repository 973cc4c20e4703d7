"""Fills every writable place it finds (its working folder, /tmp, /dev/shm, $TMPDIR) with 16 MiB
files, up to 1 GiB, going on past every error, then fails."""

import os
import tempfile
from pathlib import Path

BLOCK = b"\xa5" * 2**20


def build_model():
    places = list(dict.fromkeys(Path(p) for p in (os.getcwd(), "/tmp", "/dev/shm", tempfile.gettempdir())))
    written = 0
    for i in range(64):
        place = places[i % len(places)]
        try:
            with open(place / f"filler-{i}.bin", "wb") as f:
                for _ in range(16):
                    f.write(BLOCK)
                    written += len(BLOCK)
        except OSError:
            pass
    raise RuntimeError(f"wrote {written / 2**20:.0f} MiB")
