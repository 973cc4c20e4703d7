"""From a submission directory to a verified, scored result record: the judge, in the parent.

`judge(directory, test, rules, device)` reads the submission's files (`files`: never through a
link, within a size) and its manifest, then runs the two sandboxed stages
(`runner`, `sandbox`): stage 1 (`harness.build`) builds the model beside the
submission's code and exports it; stage 2 (`harness.measure`), started at the same time so
that its imports overlap, runs harness code only on that exported program: counts, bits,
pruning, predictions. Here, in the parent, the result is validated (`harness.jobs`), and
accuracy, the checks against memorised test images (`checks`), the claims, the score and
eligibility are computed. The test images reach stage 2 shuffled among the checks' images, in a
fresh random order; only the parent holds the permutation and the labels.
`judge(..., test=None)` is `profile`: the same record without accuracy. Whatever goes wrong
while judging one submission, even a fault of the harness, ends as that submission's record.
"""

from __future__ import annotations

import shutil
import tempfile
import traceback
from pathlib import Path

import numpy as np

from .. import __version__, jobs
from ..config import Rules, team_by_folder
from ..errors import SubmissionError
from ..manifest import Manifest, ManifestError, label, parse, team_of
from ..record import Layer, Provenance, Record, now, percent
from ..score import SCORING_VERSION, score, verify
from . import checks, files, runner, sandbox
from .checks import Sources
from .data import CLASSES, TestSet

ONE_CLASS_SHARE = 0.5  # warn when one class takes more than this share of the answers
# The rules a record depends on (its provenance; --skip-evaluated repeats an evaluation when one differs).
_RECORDED = {"reference_params", "reference_macs", "accuracy_threshold", "unseen_images", "unseen_margin",
             "require_unseen", "private_images", "private_gap", "flip_images", "flip_gap", "shift_images",
             "shift_gap", "probe_images", "timeout_s", "memory_mb", "max_processes", "scratch_mb", "submission_mb"}


def judge(directory: str | Path, test: TestSet | None, rules: Rules, device: str = "auto", progress=None,
          probe: TestSet | None = None, sources: Sources | None = None) -> Record:
    """Evaluate one submission (profile only when `test` is None: activation bits measured on the
    first images of `probe`, in a random order, when given, else on random images); `sources` are the
    checks' training and private images (`checks.sources`; None: the checks on test images only).
    Never raises for anything about the submission: a fault of the harness while judging it is that
    submission's error record. `progress(done, total)` is called as stage 2 predicts the images."""
    folder = Path(directory)
    box = sandbox.choose(rules, device)  # the machine's problem (no bwrap, no docker): raised, for every one
    prov = Provenance(harness_version=__version__, scoring_version=SCORING_VERSION, created_at=now(),
                      isolation=box.kind, rules=rules.model_dump(include=_RECORDED))
    if (data := test if test is not None else probe) is not None:
        prov.dataset_sha256, prov.dataset = data.sha256, data.source
    sources = sources or Sources()
    if test is not None:
        prov.unseen_sha256 = sources.unseen.sha256 if sources.unseen is not None else None
        prov.private_sha256 = sources.private.sha256 if sources.private is not None else None
    base = {"kind": "evaluate" if test is not None else "profile", "directory": str(folder), "provenance": prov,
            "team": "unknown", "name": label(folder.resolve().name) or "submission"}
    if rules.roster is not None:
        prov.team_from = "roster"
        if (bound := team_by_folder(rules, folder)) is None:
            return Record(status="invalid", errors=[
                f"{folder.resolve()} is in none of the team folders of the roster (the competition config's "
                "roster binds each team to its folders): put the submission in its team's folder, or ask the "
                "instructor to add the folder to the roster"], reasons=["invalid submission"], **base)
        base["team"] = bound
    try:
        return _judge(folder, test, rules, box, device, base, progress, probe, sources)
    except Exception as err:  # noqa: BLE001 - a harness fault on this submission must not stop the batch
        tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))[-8000:]
        return Record(status="error", errors=[f"the judge failed on this submission: {type(err).__name__}: "
                                              f"{str(err)[:500]}"], traceback=tb, reasons=["error while running"],
                      **base)


def evaluated(results: str | Path, test: TestSet, rules: Rules, sources: Sources | None = None) -> dict[str, Path]:
    """The records in `results` that an evaluation of the same files under the same test set, training
    and private images, scoring version and rules would repeat: submission sha256 -> record file
    (unreadable ones aside)."""
    from ..record import read

    same = rules.model_dump(include=_RECORDED)
    sources = sources or Sources()
    unseen = sources.unseen.sha256 if sources.unseen is not None else None
    private = sources.private.sha256 if sources.private is not None else None
    found = {}
    for path in sorted(Path(results).glob("*.json")):
        try:
            rec = read(path)
        except (OSError, ValueError):
            continue
        p = rec.provenance
        if (rec.kind == "evaluate" and p.submission_sha256 and p.dataset_sha256 == test.sha256
                and p.scoring_version == SCORING_VERSION and p.rules == same
                and p.unseen_sha256 == unseen and p.private_sha256 == private):
            found.setdefault(p.submission_sha256, path)
    return found


def _judge(folder: Path, test: TestSet | None, rules: Rules, box, device: str, base: dict, progress,
           probe: TestSet | None, sources: Sources) -> Record:
    prov = base["provenance"]
    try:
        found = files.read(folder, rules.submission_mb * 2**20)
        prov.files, prov.submission_sha256 = found.hashes, files.combine(found.hashes)
        manifest = parse(folder, found.manifest)
    except SubmissionError as err:
        team = err.team if isinstance(err, ManifestError) else team_of(folder, files.manifest_only(folder))
        if prov.team_from == "manifest":
            base["team"] = team or base["team"]
        return Record(status="invalid", errors=[str(err)], reasons=["invalid submission"], **base)
    base.update(name=manifest.name, declared=manifest.compression)
    roster = None
    if prov.team_from == "manifest":
        base["team"] = manifest.team
    elif manifest.team != base["team"]:
        roster = (f"submission.yaml names team {manifest.team!r}, but the roster files this folder under team "
                  f"{base['team']!r}, so the record is filed under {base['team']!r}")
    if box.kind == "docker":
        runner.reap_orphans()
    with tempfile.TemporaryDirectory(prefix="harness-judge-") as private:
        if test is not None:
            order = checks.compose(test, rules, Path(private), sources)
        else:
            order = checks.compose(probe, None, Path(private)) if probe is not None else None
        rec = _stages(folder, manifest, test, order, rules, box, device, base, Path(private), progress)
    rec.warnings[:0] = [w for w in (box.warning, roster, _scale_warning(manifest)) if w]
    if (hint := _normalize_hint(manifest, rec, rules)) is not None:
        rec.warnings.append(hint)
    return rec


def _normalize_hint(m: Manifest, rec: Record, rules: Rules) -> str | None:
    """A word when the accuracy misses the threshold and no `normalize` is declared: the commonest
    mistake, a model trained on normalised images and judged on images in [0, 1]."""
    if m.model.normalize is not None or rec.accuracy is None or rec.accuracy >= rules.accuracy_threshold:
        return None
    return (f"accuracy {rec.accuracy:.2%} and no model.normalize in submission.yaml: the harness gives the model "
            "images in [0, 1], not normalised; if it was trained on normalised images (transforms.Normalize), "
            "declare the same mean and std there, e.g. normalize: {mean: [0.4914, 0.4822, 0.4465], "
            "std: [0.2470, 0.2435, 0.2616]}")


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
        normalize=m.model.normalize.model_dump() if m.model.normalize else None,
        half_weights=c.weight_bits == 16, half_inputs=c.activation_bits == 16,
        probe_images=rules.probe_images, batch_size=rules.batch_size, device=device,
    ).model_dump()


def _outcome(base: dict, out: runner.Outcome, test: TestSet | None, order, rules: Rules, folder: Path,
             box) -> Record:
    """The record from stage 2's result, validated; a garbled result is an error record, never a crash."""
    if out.killed or out.problem or out.result is None or out.result.get("ok") is not True:
        return _failed(base, out, folder, "measuring the exported model", box)
    prov = base["provenance"]
    try:
        res = jobs.MeasureResult.model_validate(out.result)
        res.check(order.size if test is not None else None)
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


def _grade(rec: Record, res: jobs.MeasureResult, test: TestSet, order: checks.Plan, rules: Rules) -> None:
    """Accuracy and the checks, with the labels and the permutation only the parent holds."""
    graded = checks.grade(res.predictions, order, rules)
    rec.correct, rec.total, rec.accuracy, rec.checks = graded.correct, graded.total, graded.accuracy, graded.checks
    counts = np.bincount(graded.predictions, minlength=10)
    if counts.max() > ONE_CLASS_SHARE * test.size:
        rec.warnings.append(f"the model answers class {int(counts.argmax())} ({CLASSES[int(counts.argmax())]}) for "
                            f"{counts.max() / test.size:.0%} of the test images (each class is a tenth of them): "
                            "check the normalisation, the weights and the order of the classes")
    if rec.accuracy < rules.accuracy_threshold:
        rec.reasons.insert(0, f"accuracy {rec.accuracy:.2%} below {percent(rules.accuracy_threshold)}")
    caught = [c for c in graded.checks if c.ran and not c.passed]
    failed = [checks.reason(c) for c in caught]
    if rules.require_unseen:
        failed += [f"the rules require the unseen check, which did not run: {c.note}" for c in graded.checks
                   if c.name == "unseen" and not c.ran]
    rec.reasons.extend(failed)
    if caught:
        rec.warnings.append(checks.WARNING)
    rec.eligible = (rec.status == "ok" and rec.claims_verified and rec.accuracy >= rules.accuracy_threshold
                    and not failed)
