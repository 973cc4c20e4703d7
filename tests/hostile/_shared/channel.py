"""What a hostile stage-1 submission can reach of its worker's output: the files it may write
itself (the single-process judge read result.json from its working folder) and any pipe other
than stdin and its log (the channel of harness.wire, a dup of the stdout it was started with)."""

import os
from pathlib import Path


def forge(data: bytes) -> int:
    """Send `data` as result.json every way it can; how many ways took it."""
    taken = 0
    try:
        Path("result.json").write_bytes(data)
        taken += 1
    except OSError:
        pass
    frame = f"FILE result.json {len(data)}\n".encode() + data
    avoid = {os.fstat(fd).st_ino for fd in (0, 2)}
    for fd in range(3, 64):
        try:
            st = os.fstat(fd)
            if st.st_ino not in avoid and (st.st_mode & 0o170000) == 0o010000:  # a pipe
                os.write(fd, frame)
                taken += 1
        except OSError:
            pass
    return taken
