"""Stage 1's process: `python -m harness.export` (runs beside the submission's code).

Reads a `harness.jobs.BuildJob` on stdin (`harness.stage.serve`), builds the model, loads its
weights, exports it into `graph.pt2` in the job's `out` folder and sends that file to the parent;
on failure it sends a `Failure` as `result.json`. Exit status: 0 exported, 2 invalid submission,
3 the submission failed while running.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..jobs import GRAPH, BuildJob
from ..stage import Sent, serve


def main() -> int:
    return serve(BuildJob, build_and_export)


def build_and_export(job: BuildJob) -> Sent:
    """Build the submission's model, load its weights, export it; the program file to send."""
    from . import export, loader

    out = Path(job.out)
    model = loader.build(job.submission, job.code, job.factory, job.weights)
    export.export(model, out / GRAPH, job.submission)
    return {GRAPH: out / GRAPH}


if __name__ == "__main__":
    sys.exit(main())
