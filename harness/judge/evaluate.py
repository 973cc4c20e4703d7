"""From a submission directory to a verified, scored result record: the judge, in the parent.

`judge(directory, test, rules, device)` reads the submission's files (`files`: never through a
link, within a size) and its manifest, then runs the two sandboxed stages
(`runner`, `sandbox`): stage 1 (`harness.build`) builds the model beside the
submission's code and exports it; stage 2 (`harness.measure`), started at the same time so
that its imports overlap, runs harness code only on that exported program: counts, bits,
pruning, predictions. Here, in the parent, the result is validated (`harness.jobs`), and
accuracy, the flip check, the claims, the score and eligibility are computed. The test images
reach stage 2 in a fresh random order; only the parent holds the permutation and the labels.
`judge(..., test=None)` is `profile`: the same record without accuracy. Whatever goes wrong
while judging one submission, even a fault of the harness, ends as that submission's record.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__, jobs
from ..config import Rules
from ..errors import SubmissionError
from ..manifest import Manifest, ManifestError, label, parse, team_of
from ..record import Flip, Layer, Provenance, Record, now
from ..score import SCORING_VERSION, score, verify
from . import files, runner, sandbox
from .data import TestSet

FLIP_SEED = 0  # the flip subset is the same for everyone
ONE_CLASS_SHARE = 0.5  # warn when one class takes more than this share of the answers
# The rules a record depends on (its provenance; --skip-evaluated repeats an evaluation when one differs).
_RECORDED = {"reference_params", "reference_macs", "accuracy_threshold", "flip_subset", "flip_gap", "probe_images",
             "timeout_s", "memory_mb", "max_processes", "scratch_mb", "submission_mb"}


def accuracy(predictions, labels) -> float:
    """Fraction of correct predictions."""
    p, y = np.asarray(predictions), np.asarray(labels)
    return float((p == y).mean()) if len(y) else 0.0


def flip_subset(size: int, n: int) -> np.ndarray:
    """The fixed, sorted indices of the flip check subset."""
    return np.sort(np.random.default_rng(FLIP_SEED).choice(size, size=min(n, size), replace=False))


def judge(directory: str | Path, test: TestSet | None, rules: Rules, device: str = "auto", progress=None,
          probe: TestSet | None = None) -> Record:
    """Evaluate one submission (profile only when `test` is None: activation bits measured on the
    first images of `probe`, in a random order, when given, else on random images). Never raises
    for anything about the submission: a fault of the harness while judging it is that submission's
    error record. `progress(done, total)` is called as stage 2 predicts the test images."""
    folder = Path(directory)
    box = sandbox.choose(rules, device)  # the machine's problem (no bwrap, no docker): raised, for every one
    prov = Provenance(harness_version=__version__, scoring_version=SCORING_VERSION, created_at=now(),
                      isolation=box.kind, rules=rules.model_dump(include=_RECORDED))
    if (data := test if test is not None else probe) is not None:
        prov.dataset_sha256, prov.dataset = data.sha256, data.source
    base = {"kind": "evaluate" if test is not None else "profile", "directory": str(folder), "provenance": prov,
            "team": "unknown", "name": label(folder.resolve().name) or "submission"}
    try:
        return _judge(folder, test, rules, box, device, base, progress, probe)
    except Exception as err:  # noqa: BLE001 - a harness fault on this submission must not stop the batch
        tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))[-8000:]
        return Record(status="error", errors=[f"the judge failed on this submission: {type(err).__name__}: "
                                              f"{str(err)[:500]}"], traceback=tb, reasons=["error while running"],
                      **base)


def evaluated(results: str | Path, test: TestSet, rules: Rules) -> dict[str, Path]:
    """The records in `results` that an evaluation of the same files under the same test set,
    scoring version and rules would repeat: submission sha256 -> record file (unreadable ones aside)."""
    from ..record import read

    same = rules.model_dump(include=_RECORDED)
    found = {}
    for path in sorted(Path(results).glob("*.json")):
        try:
            rec = read(path)
        except (OSError, ValueError):
            continue
        p = rec.provenance
        if (rec.kind == "evaluate" and p.submission_sha256 and p.dataset_sha256 == test.sha256
                and p.scoring_version == SCORING_VERSION and p.rules == same):
            found.setdefault(p.submission_sha256, path)
    return found


def _judge(folder: Path, test: TestSet | None, rules: Rules, box, device: str, base: dict, progress,
           probe: TestSet | None) -> Record:
    prov = base["provenance"]
    try:
        found = files.read(folder, rules.submission_mb * 2**20)
        prov.files, prov.submission_sha256 = found.hashes, files.combine(found.hashes)
        manifest = parse(folder, found.manifest)
    except SubmissionError as err:
        team = err.team if isinstance(err, ManifestError) else team_of(folder, files.manifest_only(folder))
        base["team"] = team or base["team"]
        return Record(status="invalid", errors=[str(err)], reasons=["invalid submission"], **base)
    base.update(team=manifest.team, name=manifest.name, declared=manifest.compression)
    if box.kind == "docker":
        runner.reap_orphans()
    with tempfile.TemporaryDirectory(prefix="harness-judge-") as private:
        images = test if test is not None else probe
        order = _shuffled(images, Path(private), rules.flip_subset) if images is not None else None
        rec = _stages(folder, manifest, test, order, rules, box, device, base, Path(private), progress)
    rec.warnings[:0] = [w for w in (box.warning, _scale_warning(manifest)) if w]
    return rec


def _scale_warning(m: Manifest) -> str | None:
    """A word when `normalize` looks like it was written for images in 0-255, not in [0, 1]."""
    n = m.model.normalize
    if n is None or max(max(n.mean), max(n.std)) <= 1.5:
        return None
    return (f"normalize: mean {n.mean} and std {n.std} look like a 0-255 scale; the harness scales the images "
            "to [0, 1] first, then applies them: divide both by 255 (e.g. mean 0.4914, std 0.2470)")


def _stages(folder: Path, m: Manifest, test: TestSet | None, order, rules: Rules, box, device: str,
            base: dict, private: Path, progress=None) -> Record:
    """Stage 2 starts first (its imports overlap stage 1), then stage 1 builds and exports; the
    program stage 1 sent reaches stage 2 through its read-only inbox."""
    inbox = private / "inbox"
    inbox.mkdir()
    binds = {str(inbox): sandbox.INBOX}
    if order is not None:
        binds[str(order.path)] = sandbox.IMAGES
    measure = runner.Worker("measure", box, binds, progress=progress)
    build = None
    try:
        build = runner.Worker("build", box, {str(folder.resolve()): sandbox.SUBMISSION})
        built = build.finish(_build_job(folder, m, build))
        graph = built.files.get(jobs.GRAPH)
        if built.killed or built.problem or graph is None:
            measure.cancel()
            return _failed(base, built, folder, "building and exporting the model", box)
        shutil.copyfile(graph, inbox / jobs.GRAPH)
        build.close()
        job = _measure_job(m, order, rules, device, measure, inbox / jobs.GRAPH, predict=test is not None)
        measured = measure.finish(job)
        rec = _outcome(base, measured, test, order, rules, folder, box)
        rec.timings["build"] = round(built.seconds, 3)  # stage 1, from its start (stage 2's overlaps it)
        return rec
    finally:
        measure.close()
        if build is not None:
            build.close()


def _build_job(folder: Path, m: Manifest, w: runner.Worker) -> dict:
    return jobs.BuildJob(submission=w.inside(folder.resolve()), code=m.model.code, factory=m.model.factory,
                         weights=m.model.weights, out=w.out).model_dump()


def _measure_job(m: Manifest, order, rules: Rules, device: str, w: runner.Worker, graph: Path,
                 predict: bool) -> dict:
    c = m.compression
    return jobs.MeasureJob(
        graph=w.inside(graph), out=w.out,
        images=w.inside(order.path) if order is not None else None, predict=predict,
        flip_positions=order.flip_positions if order is not None and predict else [],
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


def _outcome(base: dict, out: runner.Outcome, test: TestSet | None, order, rules: Rules, folder: Path,
             box) -> Record:
    """The record from stage 2's result, validated; a garbled result is an error record, never a crash."""
    if out.killed or out.problem or out.result is None or out.result.get("ok") is not True:
        return _failed(base, out, folder, "measuring the exported model", box)
    prov = base["provenance"]
    try:
        res = jobs.MeasureResult.model_validate(out.result)
        res.check(test.size if test is not None else None,
                  len(order.flip_positions) if order is not None and test is not None else 0)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        detail = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        return Record(status="error", errors=[f"the measuring stage returned a malformed result ({detail})"],
                      reasons=["error while running"], timings={"worker": round(out.seconds, 3)}, **base)
    prov.device, prov.torch_version, prov.packages = res.device, res.torch_version, dict(res.packages)
    rec = Record(status="ok", params=res.params, macs=res.macs, layers=[Layer(**r.model_dump()) for r in res.layers],
                 measured=res.measured, structured_mac_share=res.structured_mac_share,
                 warnings=list(res.warnings), timings={**res.timings, "worker": round(out.seconds, 3)}, **base)
    _credit(rec, rules)
    if test is not None:
        _grade(rec, res, test, order, rules)
    return rec


def _failed(base: dict, out: runner.Outcome, folder: Path, doing: str, box) -> Record:
    res = out.result if isinstance(out.result, dict) else {}
    try:
        failure = jobs.Failure.model_validate(res) if res else None
    except ValueError:
        failure = None
    if out.killed:
        status, message = "error", f"worker killed while {doing}: {out.killed}"
    elif out.problem:
        status, message = "error", f"worker sent an unusable result while {doing}: {out.problem}"
    elif failure is not None and failure.disk_full:
        status, message = "error", (f"worker stopped at the disk limit of {box.limits.scratch_mb} MiB (its "
                                    f"writable space was full) while {doing}: {failure.message}")
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
    return Record(status=status, errors=[jobs.plain(message).replace(inside, host)[:2000]],
                  traceback=jobs.plain(tb).replace(inside, host)[-8000:] if tb else None,
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
    counts = np.bincount(preds, minlength=10)
    if counts.max() > ONE_CLASS_SHARE * test.size:
        rec.warnings.append(f"the model answers class {int(counts.argmax())} for {counts.max() / test.size:.0%} of "
                            "the test images (each class is a tenth of them): check the normalisation, the "
                            "weights and the order of the classes")
    if rec.accuracy < rules.accuracy_threshold:
        rec.reasons.insert(0, f"accuracy {rec.accuracy:.2%} below {rules.accuracy_threshold:.0%}")
    rec.eligible = rec.status == "ok" and rec.claims_verified and rec.accuracy >= rules.accuracy_threshold
