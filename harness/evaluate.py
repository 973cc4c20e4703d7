"""From a submission directory to a verified, scored result record.

`judge(directory, test, rules, device)` reads the manifest, runs the worker (which builds
the model and predicts the unlabelled test images) in the sandbox the rules ask for
(`harness.sandbox`, `harness.runner`), then computes, here in the parent,
accuracy, the flip check, the claims, the score and eligibility. `judge(..., test=None)`
is `profile`: the same record without accuracy. `accuracy()` returns a plain number.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from . import __version__, runner, sandbox
from .config import Rules
from .data import TestSet
from .errors import SubmissionError
from .manifest import Manifest, load_manifest, raw_team
from .record import Compression, Flip, Layer, Provenance, Record, Score, now
from .score import SCORING_VERSION, score, verify

FLIP_SEED = 0  # the flip subset is the same for everyone
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
    base.update(team=manifest.team, name=manifest.name, declared=Compression(**manifest.compression.model_dump()))
    job = _job(folder, manifest, test, rules, device)
    out = runner.run(job, box)
    rec = _outcome(base, out, test, job, rules)
    if box.warning:
        rec.warnings.insert(0, box.warning)
    return rec


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


def _job(folder: Path, m: Manifest, test: TestSet | None, rules: Rules, device: str) -> dict:
    return {
        "submission": str(folder.resolve()),
        "code": m.model.code,
        "factory": m.model.factory,
        "weights": m.model.weights,
        "normalize": m.model.normalize.model_dump() if m.model.normalize else None,
        "declared": m.compression.model_dump(),
        "images": str(test.images_path) if test is not None else None,
        "flip_indices": flip_subset(test.size, rules.flip_subset).tolist() if test is not None else [],
        "probe_images": rules.probe_images,
        "batch_size": rules.batch_size,
        "device": device,
    }


def _outcome(base: dict, out: runner.Outcome, test: TestSet | None, job: dict, rules: Rules) -> Record:
    """The record from what the worker returned; a result the worker garbled is an error, never a crash."""
    res = out.result
    if res is None or res.get("ok") is not True:
        return _failed(base, out)
    prov = base["provenance"]
    try:
        prov.device, prov.torch_version = _text(res.get("device")), _text(res.get("torch_version"))
        rec = Record(status="ok", params=res["params"], macs=res["macs"], uncounted_ops=res["uncounted"],
                     layers=[Layer(**row) for row in res["layers"]], measured=Compression(**res["measured"]),
                     timings={**res.get("timings", {}), "worker": round(out.seconds, 3)}, **base)
        _credit(rec, rules)
        if test is not None:
            _grade(rec, res, test, job["flip_indices"], rules)
    except (KeyError, TypeError, ValueError, AttributeError) as err:  # pydantic's ValidationError is a ValueError
        prov.device = prov.torch_version = None
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
        message = f"worker returned a malformed result ({type(err).__name__}: {detail})"
        return Record(status="error", errors=[message], reasons=["error while running"],
                      timings={"worker": round(out.seconds, 3)}, **base)
    return rec


def _failed(base: dict, out: runner.Outcome) -> Record:
    res = out.result if isinstance(out.result, dict) else {}
    message = res.get("message")
    if out.killed:
        status, message = "error", f"worker killed: {out.killed}"
    elif out.problem:
        status, message = "error", f"worker left an unusable result: {out.problem}"
    elif isinstance(message, str) and message:
        status = "invalid" if res.get("kind") == "invalid" else "error"
    else:
        last = out.log.strip().splitlines()[-1] if out.log.strip() else "no output"
        status, message = "error", f"worker exited with status {out.returncode} without a result: {last}"
    tb = _text(res.get("traceback"), 8000) or out.log or None
    return Record(status=status, errors=[_text(message, 2000)], traceback=tb,
                  reasons=["invalid submission" if status == "invalid" else "error while running"],
                  timings={"worker": round(out.seconds, 3)}, **base)


def _text(value, limit: int = 200) -> str | None:
    """A string from the worker's result, cut to `limit` characters; None if it is not a string."""
    return value[:limit] if isinstance(value, str) else None


def _credit(rec: Record, rules: Rules) -> None:
    """Verify the claims and score what is both declared and verified."""
    effective, failures = verify(rec.declared.model_dump(), rec.measured.model_dump())
    rec.effective = Compression(**effective)
    rec.claim_failures, rec.claims_verified = failures, not failures
    terms = score(rec.params, rec.macs, effective["structured_pruning"], effective["unstructured_pruning"],
                  effective["weight_bits"], effective["activation_bits"], rules.reference_params, rules.reference_macs)
    rec.score = Score(params_term=terms.params_term, ops_term=terms.ops_term, total=terms.total)
    if failures:
        rec.reasons.append("claims not verified")
    if rec.uncounted_ops:
        rec.warnings.append(f"operations the counter does not know (not counted): {', '.join(rec.uncounted_ops)}")


def _grade(rec: Record, res: dict, test: TestSet, flip_idx: list[int], rules: Rules) -> None:
    preds = np.asarray(res["predictions"])
    if preds.dtype.kind not in "iu":
        raise ValueError(f"predictions of type {preds.dtype}, expected class indices")
    if preds.shape != test.labels.shape:
        rec.status, rec.errors = "error", [f"worker returned {preds.size} predictions for {test.size} images"]
        rec.reasons.append("error while running")
        return
    rec.correct, rec.total = int((preds == test.labels).sum()), test.size
    rec.accuracy = rec.correct / rec.total
    idx = np.asarray(flip_idx, dtype=np.int64)
    if idx.size:
        orig, flipped = accuracy(preds[idx], test.labels[idx]), accuracy(res["flip_predictions"], test.labels[idx])
        gap = orig - flipped
        rec.flip = Flip(subset=int(idx.size), accuracy=orig, flipped_accuracy=flipped, gap=gap,
                        flagged=gap > rules.flip_gap)
        if rec.flip.flagged:
            rec.warnings.append(f"accuracy on flipped images is {gap:.1%} lower than on the originals "
                                f"(more than {rules.flip_gap:.0%}): the model may have memorised the test images")
    if rec.accuracy < rules.accuracy_threshold:
        rec.reasons.insert(0, f"accuracy {rec.accuracy:.2%} below {rules.accuracy_threshold:.0%}")
    rec.eligible = rec.status == "ok" and rec.claims_verified and rec.accuracy >= rules.accuracy_threshold
