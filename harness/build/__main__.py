"""Stage 1's process: `python -m harness.build` (runs beside the submission's code).

Reads a `harness.jobs.BuildJob` on stdin (`harness.wire`), builds the model, loads its weights,
exports it into `graph.pt2` in the job's `out` folder and sends that file to the parent; on
failure it sends a `Failure` as `result.json`. Exit status: 0 exported, 2 invalid submission,
3 the submission failed while running.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .. import wire
from ..errors import EXIT_ERROR, HarnessError
from ..jobs import GRAPH, RESULT, BuildJob, Failure


def main() -> int:
    line, channel = wire.start()
    job = BuildJob.model_validate_json(line)
    out = Path(job.out)
    try:
        from . import export, loader

        model = loader.build(job.submission, job.code, job.factory, job.weights)
        export.export(model, out / GRAPH, job.submission)
        wire.send_file(channel, GRAPH, out / GRAPH)
        return 0
    except Exception as err:  # noqa: BLE001 - anything the submission's code raised, or its refusal
        wire.send(channel, RESULT, Failure.of(err, out=out).model_dump_json().encode())
        return err.exit_code if isinstance(err, HarnessError) else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
