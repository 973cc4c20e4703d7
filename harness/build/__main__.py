"""Stage 1's process: `python -m harness.build JOB.json` (runs beside the submission's code).

Reads a `harness.jobs.BuildJob`, builds the model, loads its weights and exports it into
`graph.pt2` in the job's `out` folder; on failure writes a `Failure` into `result.json`.
Exit status: 0 exported, 2 invalid submission, 3 the submission failed while running.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import EXIT_ERROR, HarnessError
from ..jobs import GRAPH, BuildJob, Failure, write_result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = BuildJob.model_validate_json(Path(argv[0]).read_text())
    out = Path(job.out)
    try:
        from . import export, loader

        model = loader.build(job.submission, job.code, job.factory, job.weights)
        export.export(model, out / GRAPH, job.submission)
        return 0
    except Exception as err:  # noqa: BLE001 - anything the submission's code raised, or its refusal
        write_result(out, Failure.of(err).model_dump())
        return err.exit_code if isinstance(err, HarnessError) else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
