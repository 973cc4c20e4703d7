"""From a submission directory to a verified, scored result record: the judge, in the parent.

`judge(directory, test, rules, device)` reads the submission's files (`files`: never through a
link, within a size) and its manifest, then runs the two sandboxed stages
(`runner`, `sandbox`): stage 1 (`harness.export`) builds the model beside the
submission's code and exports it; stage 2 (`harness.measure`), started at the same time so
that its imports overlap, runs harness code only on that exported program: counts, bits,
pruning, predictions. The program stage 1 exported is kept (`programs`): judged again with the
same files, harness and environment, a submission's kept program goes to stage 2, which checks it
as it checks any, and stage 1 does not run. Here, in the parent, the result is validated
(`harness.jobs`), and accuracy, the checks against memorised test images (`checks`), the claims, the score and
eligibility are computed (`grading`). The test images reach stage 2 shuffled among the checks' images, in a
fresh random order; only the parent holds the permutation and the labels.
`judge(..., test=None)` is `profile`: the same record without accuracy. Whatever goes wrong
while judging one submission, even a fault of the harness, ends as that submission's record.

An `Evaluation` holds what the steps share (the submission, the rules, the isolation, the data,
what is known so far of the record); the record is built once, at the end, from the computed
parts (`Evaluation.record`), and validated as it is built.
"""

from __future__ import annotations

import shutil
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .. import __version__, jobs
from ..cluster.slurm import job_here
from ..config import Rules, team_by_folder
from ..data import TestSet
from ..errors import SubmissionError
from ..manifest import Manifest, ManifestError, label, parse, team_of
from ..record import Provenance, Record, now
from ..score import SCORING_VERSION
from ..text import plain
from . import checks, files, grading, programs, runner, sandbox
from .checks import Sources

# The rules a record depends on (its provenance; --skip-evaluated repeats an evaluation when one differs).
_RECORDED = {"reference_params", "reference_macs", "accuracy_threshold", "unseen_images", "unseen_margin",
             "require_unseen", "private_images", "private_gap", "flip_images", "flip_gap", "shift_images",
             "shift_gap", "probe_images", "timeout_s", "memory_mb", "max_processes", "scratch_mb", "submission_mb"}
Progress = Callable[[int, int], None]
Status = Literal["ok", "invalid", "error"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass
class Evaluation:
    """One submission being judged: what the steps share, and what is known so far of its record
    (who, where, the provenance's facts, the judge's own warnings)."""

    folder: Path
    rules: Rules
    box: sandbox.Isolation
    device: Device
    test: TestSet | None  # None: profile
    probe: TestSet | None = None
    sources: Sources = field(default_factory=Sources)
    progress: Progress | None = None
    team: str = "unknown"
    name: str = "submission"
    manifest: Manifest | None = None
    order: checks.Plan | None = None  # the images stage 2 predicts (or probes), in their shuffled order
    facts: dict = field(default_factory=dict)  # the provenance's fields
    warnings: list[str] = field(default_factory=list)  # the judge's own, before stage 2's

    @property
    def kind(self) -> Literal["evaluate", "profile"]:
        return "evaluate" if self.test is not None else "profile"

    @property
    def parsed(self) -> Manifest:
        """The manifest, once read (the stages run only then)."""
        if self.manifest is None:
            raise RuntimeError("the stages ran before the manifest was read")  # a harness bug: an error record
        return self.manifest

    def record(self, status: Status, **parts) -> Record:
        """The record, built once from the computed `parts` and what the evaluation knows."""
        declared = self.manifest.compression if self.manifest is not None else None
        return Record(kind=self.kind, team=self.team, name=self.name, directory=str(self.folder), status=status,
                      declared=declared, provenance=Provenance(**self.facts),
                      **{**parts, "warnings": self.warnings + parts.get("warnings", [])})


def judge(directory: str | Path, test: TestSet | None, rules: Rules, device: Device = "auto",
          progress: Progress | None = None, probe: TestSet | None = None, sources: Sources | None = None) -> Record:
    """Evaluate one submission (profile only when `test` is None: activation bits measured on the
    first images of `probe`, in a random order, when given, else on random images); `sources` are the
    checks' training and private images (`checks.sources`; None: the checks on test images only).
    Never raises for anything about the submission: a fault of the harness while judging it is that
    submission's error record. `progress(done, total)` is called as stage 2 predicts the images."""
    ev = _evaluation(Path(directory), test, rules, sandbox.choose(rules, device), device, probe, sources, progress)
    if rules.roster is not None and team_by_folder(rules, ev.folder) is None:
        return ev.record("invalid", reasons=["invalid submission"], errors=[
            f"{ev.folder.resolve()} is in none of the team folders of the roster (the competition config's "
            "roster binds each team to its folders): put the submission in its team's folder, or ask the "
            "instructor to add the folder to the roster"])
    try:
        return _judge(ev)
    except Exception as err:  # noqa: BLE001 - a harness fault on this submission must not stop the batch
        tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))[-8000:]
        return ev.record("error", errors=[f"the judge failed on this submission: {type(err).__name__}: "
                                          f"{str(err)[:500]}"], traceback=tb, reasons=["error while running"])


def _evaluation(folder: Path, test: TestSet | None, rules: Rules, box: sandbox.Isolation, device: Device,
                probe: TestSet | None = None, sources: Sources | None = None,
                progress: Progress | None = None) -> Evaluation:
    """A submission's evaluation before anything of it is read: the provenance's facts, its team by the roster."""
    ev = Evaluation(folder, rules, box, device, test, probe, sources or Sources(), progress,
                    name=label(folder.resolve().name) or "submission")
    ev.facts = dict(harness_version=__version__, scoring_version=SCORING_VERSION, created_at=now(),
                    isolation=box.kind, rules=rules.model_dump(include=_RECORDED), job=job_here())
    if (data := test if test is not None else probe) is not None:
        ev.facts.update(dataset_sha256=data.sha256, dataset=data.source)
    if test is not None:
        ev.facts.update(ev.sources.hashes())
    if rules.roster is not None:
        ev.facts["team_from"] = "roster"
        ev.team = team_by_folder(rules, folder) or ev.team  # in no team's folder: judge() refuses it
    return ev


def stopped(directory: str | Path, test: TestSet, rules: Rules, why: str, device: Device = "auto",
            sources: Sources | None = None) -> Record:
    """The error record of an evaluation stopped from outside before it finished (SIGTERM: a Slurm
    time limit, preemption or scancel; `why` says which): who and which files, as `judge` would
    have recorded them, and `stopped`, so that `--skip-evaluated` evaluates the submission again."""
    ev = _evaluation(Path(directory), test, rules, sandbox.choose(rules, device), device, sources=sources)
    try:
        _read(ev)
    except SubmissionError:
        pass  # judged again, it will say so
    return ev.record("error", errors=[f"the evaluation was stopped before it finished: {why}; run the batch "
                                      "again with --skip-evaluated to evaluate it"],
                     reasons=["error while running"], stopped=why)


def evaluated(results: str | Path, test: TestSet, rules: Rules, sources: Sources | None = None) -> dict[str, Path]:
    """The records in `results` that an evaluation of the same files under the same test set, training
    and private images, scoring version and rules would repeat: submission sha256 -> record file
    (unreadable ones aside, and evaluations stopped before they finished)."""
    from ..record import read

    same = rules.model_dump(include=_RECORDED)
    hashes = (sources or Sources()).hashes()
    found: dict[str, Path] = {}
    for path in sorted(Path(results).glob("*.json")):
        try:
            rec = read(path)
        except (OSError, ValueError):
            continue
        p = rec.provenance
        if (rec.kind == "evaluate" and rec.stopped is None and p.submission_sha256 and p.dataset_sha256 == test.sha256
                and p.scoring_version == SCORING_VERSION and p.rules == same
                and p.unseen_sha256 == hashes["unseen_sha256"] and p.private_sha256 == hashes["private_sha256"]):
            found.setdefault(p.submission_sha256, path)
    return found


def _judge(ev: Evaluation) -> Record:
    """The submission's files and manifest (read by the parent), then its two stages."""
    roster = ev.facts.get("team_from") == "roster"
    try:
        manifest = _read(ev)
    except SubmissionError as err:
        team = err.team if isinstance(err, ManifestError) else team_of(ev.folder, files.manifest_only(ev.folder))
        if not roster and team:
            ev.team = team
        return ev.record("invalid", errors=[str(err)], reasons=["invalid submission"])
    note = None
    if roster and manifest.team != ev.team:
        note = (f"submission.yaml names team {manifest.team!r}, but the roster files this folder under team "
                f"{ev.team!r}, so the record is filed under {ev.team!r}")
    ev.warnings = [w for w in (ev.box.warning, note, grading.scale_warning(manifest)) if w]
    ev.box.reap_orphans()  # docker: the containers of judges that died
    with tempfile.TemporaryDirectory(prefix="harness-judge-") as private:
        if ev.test is not None:
            ev.order = checks.compose(ev.test, ev.rules, Path(private), ev.sources)
        elif ev.probe is not None:
            ev.order = checks.compose(ev.probe, None, Path(private))
        rec = _stages(ev, Path(private))
        if ev.facts.get("program") == "reused" and rec.status != "ok":  # a kept program stage 2 refused
            rec = _stages(ev, Path(private), reuse=False)  # judged afresh: a damaged cache decides no verdict
        return rec


def _read(ev: Evaluation) -> Manifest:
    """The submission's files (their hashes into the provenance) and its manifest, read by the parent:
    the evaluation's name, and its team unless the roster names it. Raises SubmissionError."""
    found = files.read(ev.folder, ev.rules.submission_mb * 2**20)
    ev.facts.update(files=found.hashes, submission_sha256=files.combine(found.hashes))
    manifest = parse(ev.folder, found.manifest)
    ev.manifest, ev.name = manifest, manifest.name or ev.name
    if ev.facts.get("team_from") != "roster":
        ev.team = manifest.team
    return manifest


def _stages(ev: Evaluation, private: Path, reuse: bool = True) -> Record:
    """Stage 2 starts first (its imports overlap stage 1), then stage 1 builds and exports; the
    program stage 1 sent reaches stage 2 through its read-only inbox, and is kept for a later
    judgement of the same files (`programs`). When a program is kept for this one, stage 1 does not
    run: the kept program goes to the inbox, and stage 2 checks it as it checks any (unless not `reuse`)."""
    inbox = Path(tempfile.mkdtemp(prefix="inbox-", dir=private))
    binds = {str(inbox): sandbox.INBOX}
    if ev.order is not None:
        binds[str(ev.order.path)] = sandbox.IMAGES
    measure = runner.Worker("measure", ev.box, binds, progress=ev.progress)
    build = None
    try:
        seconds = None
        key = _program_key(ev)
        if not (reuse and _reused(ev, key, inbox / jobs.GRAPH)):
            build = runner.Worker("export", ev.box, {str(ev.folder.resolve()): sandbox.SUBMISSION})
            built = build.finish(_build_job(ev, build))
            graph = built.files.get(jobs.GRAPH)
            if built.killed or built.problem or graph is None:
                measure.cancel()
                return _failed(ev, built, "building and exporting the model")
            shutil.copyfile(graph, inbox / jobs.GRAPH)
            ev.facts["program"], seconds = "exported", built.seconds
            if key is not None:
                programs.Programs(programs.folder()).put(key, graph)
            build.close()
        measured = measure.finish(_measure_job(ev, measure, inbox / jobs.GRAPH))
        return _outcome(ev, measured, seconds)
    finally:
        measure.close()
        if build is not None:
            build.close()


def _program_key(ev: Evaluation) -> str | None:
    """The key of the program stage 1 exports for this evaluation (`programs.key`); None when the
    isolation cannot tell its environment (no program is then reused nor kept)."""
    environment = ev.box.environment()
    sha = ev.facts.get("submission_sha256")
    return programs.key(sha, environment) if sha and environment is not None else None


def _reused(ev: Evaluation, key: str | None, inbox: Path) -> bool:
    """Whether the rules allow reuse and a program is kept under `key`: it is then copied to `inbox`."""
    if key is None or not ev.rules.reuse_programs or (kept := programs.Programs(programs.folder()).get(key)) is None:
        return False
    try:
        shutil.copyfile(kept, inbox)
    except OSError:  # evicted meanwhile by another judge, or unreadable: exported afresh
        inbox.unlink(missing_ok=True)
        return False
    ev.facts["program"] = "reused"
    return True


def _build_job(ev: Evaluation, w: runner.Worker) -> jobs.BuildJob:
    m = ev.parsed.model
    return jobs.BuildJob(submission=w.inside(ev.folder.resolve()), code=m.code, factory=m.factory,
                         weights=m.weights, out=w.out)


def _measure_job(ev: Evaluation, w: runner.Worker, graph: Path) -> jobs.MeasureJob:
    c, rules = ev.parsed.compression, ev.rules
    return jobs.MeasureJob(
        graph=w.inside(graph), out=w.out,
        images=w.inside(ev.order.path) if ev.order is not None else None, predict=ev.test is not None,
        normalize=ev.parsed.model.normalize,
        half_weights=c.weight_bits == 16, half_inputs=c.activation_bits == 16,
        probe_images=rules.probe_images, batch_size=rules.batch_size, device=ev.device,
    )


def _outcome(ev: Evaluation, out: runner.Outcome, build_seconds: float | None = None) -> Record:
    """The record from stage 2's result, validated; a garbled result is an error record, never a crash.
    `build_seconds`: stage 1's time, from its start (stage 2's overlaps it)."""
    if out.killed or out.problem or out.result is None or out.result.get("ok") is not True:
        return _failed(ev, out, "measuring the exported model")
    worker = {"worker": round(out.seconds, 3)}
    built = {"build": round(build_seconds, 3)} if build_seconds is not None else {}
    try:
        res = jobs.MeasureResult.read(out.result)
        res.check(ev.order.size if ev.test is not None and ev.order is not None else None)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        detail = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        return ev.record("error", errors=[f"the measuring stage returned a malformed result ({detail})"],
                         reasons=["error while running"], timings=worker)
    ev.facts.update(device=res.device, torch_version=res.torch_version, packages=dict(res.packages))
    claims = grading.credit(res.params, res.macs, ev.parsed.compression, res.measured, res.structured_mac_share,
                            ev.rules)
    parts: dict = dict(params=res.params, macs=res.macs, layers=list(res.layers), measured=res.measured,
                 structured_mac_share=res.structured_mac_share, effective=claims.effective,
                 claim_failures=claims.failures, claims_verified=claims.verified, score=claims.score,
                 reasons=[] if claims.verified else [grading.NOT_VERIFIED], warnings=list(res.warnings),
                 timings={**res.timings, **worker, **built})
    if ev.test is not None and ev.order is not None and res.predictions is not None:  # res.check: both there
        g = grading.grade(res.predictions, ev.order, ev.test, ev.rules, claims, ev.parsed)
        parts.update(correct=g.correct, total=g.total, accuracy=g.accuracy, checks=g.checks, reasons=g.reasons,
                     warnings=parts["warnings"] + g.warnings, eligible=g.eligible)
    return ev.record("ok", **parts)


def _failed(ev: Evaluation, out: runner.Outcome, doing: str) -> Record:
    res = out.result if isinstance(out.result, dict) else {}
    status: Status
    try:
        failure = jobs.Failure.model_validate(res) if res else None
    except ValueError:
        failure = None
    if out.killed:
        status, message = "error", f"worker killed while {doing}: {out.killed}"
    elif out.problem:
        status, message = "error", f"worker sent an unusable result while {doing}: {out.problem}"
    elif failure is not None and failure.disk_full:
        status, message = "error", (f"worker stopped at the disk limit of {ev.box.limits.scratch_mb} MiB (its "
                                    f"writable space was full) while {doing}: {failure.message}")
    elif failure is not None:
        status, message = failure.kind, failure.message
    elif res:
        status, message = "error", f"worker returned a malformed result while {doing}"
    else:
        last = out.log.strip().splitlines()[-1] if out.log.strip() else "no output"
        status, message = "error", f"worker exited with status {out.returncode} while {doing}, without a result: {last}"
    inside = f"{sandbox.SUBMISSION}/"
    host = f"{str(ev.folder.resolve()).rstrip('/')}/"
    tb = (failure.traceback if failure is not None else None) or out.log or None
    return ev.record(status, errors=[plain(message).replace(inside, host)[:2000]],
                     traceback=plain(tb).replace(inside, host)[-8000:] if tb else None,
                     reasons=["invalid submission" if status == "invalid" else "error while running"],
                     timings={"worker": round(out.seconds, 3)})
