"""Tries to write each path listed in targets.txt (host paths the test chose) and reports how many it could."""

from pathlib import Path


def build_model():
    targets = (Path(__file__).parent / "targets.txt").read_text().split()
    done = []
    for target in targets:
        try:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            Path(target).write_text("pwned\n")
            done.append(target)
        except OSError:
            pass
    raise RuntimeError(f"{len(done)} of {len(targets)} writes outside the scratch folder succeeded: {done}")
