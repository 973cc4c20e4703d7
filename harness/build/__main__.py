"""Stage 1's process: `python -m harness.build JOB.json` (runs beside the submission's code).

Reads a `harness.jobs.BuildJob`, builds the model, loads its weights and exports it into
`graph.pt2` in the job's `out` folder; on failure writes a `Failure` into `result.json`.
Exit status: 0 exported, 2 invalid submission, 3 the submission failed while running.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from ..errors import EXIT_ERROR, HarnessError
from ..jobs import GRAPH, BuildJob, Failure


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = BuildJob.model_validate_json(Path(argv[0]).read_text())
    out = Path(job.out)
    try:
        from . import export, loader

        model = loader.build(job.submission, job.code, job.factory, job.weights)
        export.export(model, out / GRAPH, job.submission)
        return 0
    except HarnessError as err:
        kind = "invalid" if err.exit_code == 2 else "error"
        failure = Failure(kind=kind, message=str(err)[:8000], traceback=_tb(err))
        code = err.exit_code
    except Exception as err:  # noqa: BLE001 - anything else the submission's code raised
        failure = Failure(kind="error", message=f"{type(err).__name__}: {str(err)[:4000]}", traceback=_tb(err))
        code = EXIT_ERROR
    tmp = out / "result.json.tmp"
    tmp.write_text(json.dumps(failure.model_dump()))
    tmp.replace(out / "result.json")
    return code


def _tb(err: BaseException) -> str:
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))[-8000:]


if __name__ == "__main__":
    sys.exit(main())
