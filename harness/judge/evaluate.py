"""From a submission directory to a verified, scored result record: the judge, in the parent.

`judge(directory, test, rules, device)` reads the manifest, then runs the two sandboxed stages
(`runner`, `sandbox`): stage 1 (`harness.build`) builds the model beside the
submission's code and exports it; stage 2 (`harness.measure`), started at the same time so
that its imports overlap, runs harness code only on that exported program: counts, bits,
pruning, predictions. Here, in the parent, the result is validated (`harness.jobs`), and
accuracy, the flip check, the claims, the score and eligibility are computed. The test images
reach stage 2 in a fresh random order; only the parent holds the permutation and the labels.
`judge(..., test=None)` is `profile`: the same record without accuracy.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__, jobs
from ..config import Rules
from ..errors import SubmissionError
from ..manifest import Manifest, load_manifest, raw_team
from ..record import Flip, Layer, Provenance, Record, now
from ..score import SCORING_VERSION, score, verify
from . import runner, sandbox
from .data import TestSet

FLIP_SEED = 0  # the flip subset is the same for everyone
MAX_GRAPH_BYTES = 4 * 2**30  # the largest exported program stage 2 is given
_RECORDED = {"reference_params", "reference_macs", "accuracy_threshold", "timeout_s", "memory_mb", "max_processes"}


def accuracy(predictions, labels) -> float:
    """Fraction of correct predictions."""
    p, y = np.asarray(predictions), np.asarray(labels)
    return float((p == y).mean()) if len(y) else 0.0


def flip_subset(size: int, n: int) -> np.ndarray:
    """The fixed, sorted indices of the flip check subset."""
    return np.sort(np.random.default_rng(FLIP_SEED).choice(size, size=min(n, size), replace=False))


def judge(directory: str | Path, test: TestSet | None, rules: Rules, device: str = "auto") -> Record:
    """Evaluate one submission (profile only when `test` is None); never raises for the submission's faults."""
    folder = Path(directory)
    box = sandbox.choose(rules, device)
    prov = Provenance(harness_version=__version__, scoring_version=SCORING_VERSION, created_at=now(),
                      isolation=box.kind, rules=rules.model_dump(include=_RECORDED))
    if test is not None:
        prov.dataset_sha256, prov.dataset = test.sha256, test.source
    kind = "evaluate" if test is not None else "profile"
    base = {"kind": kind, "directory": str(folder), "provenance": prov}
    try:
        prov.files = hash_files(folder)
        prov.submission_sha256 = _combine(prov.files)
        manifest = load_manifest(folder)
    except SubmissionError as err:
        team = raw_team(folder) or "unknown"
        return Record(team=team, name=folder.name or "submission", status="invalid", errors=[str(err)],
                      reasons=["invalid submission"], **base)
    base.update(team=manifest.team, name=manifest.name, declared=manifest.compression)
    with tempfile.TemporaryDirectory(prefix="harness-judge-") as private:
        order = _shuffled(test, Path(private), rules.flip_subset) if test is not None else None
        rec = _stages(folder, manifest, test, order, rules, box, device, base)
    if box.warning:
        rec.warnings.insert(0, box.warning)
    return rec


def _stages(folder: Path, m: Manifest, test: TestSet | None, order, rules: Rules, box, device: str,
            base: dict) -> Record:
    """Stage 2 starts first (its imports overlap stage 1), then stage 1 builds and exports."""
    images = {str(order.path): sandbox.IMAGES} if order is not None else {}
    measure = runner.Worker("measure", box, images)
    build = None
    try:
        build = runner.Worker("build", box, {str(folder.resolve()): sandbox.SUBMISSION})
        built = build.finish(_build_job(folder, m, build))
        graph = build.scratch / jobs.GRAPH
        if not _plain_file(graph):
            measure.cancel()
            return _failed(base, built, folder, "building and exporting the model")
        shutil.copyfile(graph, measure.scratch / jobs.GRAPH)
        build.close()
        job = _measure_job(m, order, rules, device, measure)
        measured = measure.finish(job)
        rec = _outcome(base, measured, test, order, rules, folder)
        rec.timings["build"] = round(built.seconds, 3)  # stage 1, from its start (stage 2's overlaps it)
        return rec
    finally:
        measure.close()
        if build is not None:
            build.close()


def _build_job(folder: Path, m: Manifest, w: runner.Worker) -> dict:
    return jobs.BuildJob(submission=w.inside(folder.resolve()), code=m.model.code, factory=m.model.factory,
                         weights=m.model.weights, out=w.inside(w.scratch)).model_dump()


def _measure_job(m: Manifest, order, rules: Rules, device: str, w: runner.Worker) -> dict:
    c = m.compression
    return jobs.MeasureJob(
        graph=w.inside(w.scratch / jobs.GRAPH), out=w.inside(w.scratch),
        images=w.inside(order.path) if order is not None else None,
        flip_positions=order.flip_positions if order is not None else [],
        normalize=m.model.normalize.model_dump() if m.model.normalize else None,
        half_weights=c.weight_bits == 16, half_inputs=c.activation_bits == 16,
        probe_images=rules.probe_images, batch_size=rules.batch_size, device=device,
    ).model_dump()


@dataclass
class _Order:
    """This evaluation's random order of the test images: stage 2 sees `images[perm]`."""

    path: Path
    perm: np.ndarray  # position -> index in the test set
    flip: np.ndarray  # test-set indices of the flip subset
    flip_positions: list[int]


def _shuffled(test: TestSet, folder: Path, flips: int) -> _Order:
    """Write the test images in a fresh random order into `folder`; the permutation stays here."""
    perm = np.random.default_rng(secrets.randbits(128)).permutation(test.size)
    path = folder / "images.npy"
    np.save(path, test.images()[perm])
    flip = flip_subset(test.size, flips)
    return _Order(path=path, perm=perm, flip=flip, flip_positions=np.argsort(perm)[flip].tolist())


def hash_files(folder: Path) -> dict[str, str]:
    """sha256 of every file of a submission (caches and hidden files aside), by relative path."""
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: not a directory")
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _combine(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for rel, sha in files.items():
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest()


def _plain_file(path: Path) -> bool:
    """A regular file (never a link or a FIFO left by the submission), within the size allowed."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and 0 < st.st_size <= MAX_GRAPH_BYTES


def _outcome(base: dict, out: runner.Outcome, test: TestSet | None, order, rules: Rules, folder: Path) -> Record:
    """The record from stage 2's result, validated; a garbled result is an error record, never a crash."""
    if out.result is None or out.result.get("ok") is not True:
        return _failed(base, out, folder, "measuring the exported model")
    prov = base["provenance"]
    try:
        res = jobs.MeasureResult.model_validate(out.result)
        res.check(test.size if test is not None else None, len(order.flip_positions) if order is not None else 0)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        detail = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        return Record(status="error", errors=[f"the measuring stage returned a malformed result ({detail})"],
                      reasons=["error while running"], timings={"worker": round(out.seconds, 3)}, **base)
    prov.device, prov.torch_version = res.device, res.torch_version
    rec = Record(status="ok", params=res.params, macs=res.macs, layers=[Layer(**r.model_dump()) for r in res.layers],
                 measured=res.measured, structured_mac_share=res.structured_mac_share,
                 warnings=list(res.warnings), timings={**res.timings, "worker": round(out.seconds, 3)}, **base)
    _credit(rec, rules)
    if test is not None:
        _grade(rec, res, test, order, rules)
    return rec


def _failed(base: dict, out: runner.Outcome, folder: Path, doing: str) -> Record:
    res = out.result if isinstance(out.result, dict) else {}
    try:
        failure = jobs.Failure.model_validate(res) if res else None
    except ValueError:
        failure = None
    if out.killed:
        status, message = "error", f"worker killed while {doing}: {out.killed}"
    elif out.problem:
        status, message = "error", f"worker left an unusable result while {doing}: {out.problem}"
    elif failure is not None:
        status, message = failure.kind, failure.message
    elif res:
        status, message = "error", f"worker returned a malformed result while {doing}"
    else:
        last = out.log.strip().splitlines()[-1] if out.log.strip() else "no output"
        status, message = "error", f"worker exited with status {out.returncode} while {doing}, without a result: {last}"
    inside = f"{sandbox.SUBMISSION}/"
    host = f"{str(folder.resolve()).rstrip('/')}/"
    tb = (failure.traceback if failure is not None else None) or out.log or None
    return Record(status=status, errors=[message.replace(inside, host)[:2000]],
                  traceback=tb.replace(inside, host)[-8000:] if tb else None,
                  reasons=["invalid submission" if status == "invalid" else "error while running"],
                  timings={"worker": round(out.seconds, 3)}, **base)


def _credit(rec: Record, rules: Rules) -> None:
    """Verify the claims and score what is both declared and verified."""
    effective, failures = verify(rec.declared, rec.measured)
    rec.effective = effective
    rec.claim_failures, rec.claims_verified = failures, not failures
    rec.score = score(rec.params, rec.macs, effective, rec.structured_mac_share, rules)
    if failures:
        rec.reasons.append("claims not verified")


def _grade(rec: Record, res: jobs.MeasureResult, test: TestSet, order, rules: Rules) -> None:
    """Accuracy and the flip check, with the labels and the permutation only the parent holds."""
    preds = np.empty(test.size, dtype=np.int64)
    preds[order.perm] = np.asarray(res.predictions, dtype=np.int64)
    rec.correct, rec.total = int((preds == test.labels).sum()), test.size
    rec.accuracy = rec.correct / rec.total
    idx = order.flip
    if idx.size:
        orig = accuracy(preds[idx], test.labels[idx])
        flipped = accuracy(np.asarray(res.flip_predictions), test.labels[idx])
        gap = orig - flipped
        rec.flip = Flip(subset=int(idx.size), accuracy=orig, flipped_accuracy=flipped, gap=gap,
                        flagged=gap > rules.flip_gap)
        if rec.flip.flagged:
            rec.warnings.append(f"accuracy on flipped images is {gap:.1%} lower than on the originals "
                                f"(more than {rules.flip_gap:.0%}): the model may have memorised the test images")
    if rec.accuracy < rules.accuracy_threshold:
        rec.reasons.insert(0, f"accuracy {rec.accuracy:.2%} below {rules.accuracy_threshold:.0%}")
    rec.eligible = rec.status == "ok" and rec.claims_verified and rec.accuracy >= rules.accuracy_threshold
