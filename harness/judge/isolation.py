"""The interface of an isolation: what the runner and the watch ask of wherever a stage runs.

An `Isolation` composes a stage's command line (`argv`), names the worker's writable folder and
the host paths it sees (`out`, `inside`), finds the roots of the process tree the watch holds
(`pid_of`: a root outside the tree of the process the runner starts, such as a container's
first process), ends what killing that tree leaves running (`stop`), reads a limit it enforced
itself from the exit status (`killed_by`), removes workers of judges that died
(`reap_orphans`) and names what a stage's work depends on besides the submission and the harness
(`environment`: the key of a kept exported program has it, `harness.judge.programs`). The
base class does what a sandbox does by default: a tmpfs at `SCRATCH` as the writable space,
host paths seen through the binds, nothing of its own to watch, stop or reap.

The backends (`harness.judge.sandbox`: `Unconfined`, `Bubblewrap`, `Docker`) are subclasses,
and `sandbox.choose()` picks one from the rules. Nothing else asks which one runs but to record
its `kind`: a further backend (a Kubernetes Job, a Slurm task) would be one more subclass, with
its `argv` and whichever hooks it needs (a job's pods as `pid_of`, `kubectl delete` or `scancel`
as `stop`, its own status for `killed_by`), and one more entry in `sandbox.BACKENDS`; the
runner, the watch and the judge would not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ..config import Rules

SCRATCH = "/tmp"  # the worker's working folder and writable space inside a sandbox (a tmpfs)


@dataclass(frozen=True)
class Limits:
    """What one worker may use; at a limit the watch kills its whole process tree."""

    timeout_s: float  # wall clock, seconds
    memory_mb: int  # resident memory of all its processes, MiB
    processes: int  # processes and threads together, as docker's --pids-limit counts them
    scratch_mb: int  # size of its /tmp and /dev/shm tmpfs, of the largest file it may write, and of its log

    @classmethod
    def of(cls, rules: Rules) -> Limits:
        return cls(timeout_s=rules.timeout_s, memory_mb=rules.memory_mb, processes=rules.max_processes,
                   scratch_mb=rules.scratch_mb)


@dataclass(frozen=True)
class Isolation:
    """How to run one worker: the interface of every isolation, and what a sandbox does by default
    (a writable tmpfs at `SCRATCH`, host paths seen through the binds, nothing of its own to watch,
    stop or reap). `kind` names it in records and in the config's `isolation`."""

    kind: ClassVar[str]
    remedy: ClassVar[str] = ""  # what to do about a `problem`, in the error that refuses the isolation
    limits: Limits
    device: str = "auto"
    warning: str | None = None  # for the record, e.g. when `auto` fell back to none

    @classmethod
    def problem(cls, rules: Rules) -> str | None:
        """None when this isolation can run here under `rules`, else why not."""
        return None

    @classmethod
    def from_rules(cls, rules: Rules, device: str = "auto", warning: str | None = None) -> Isolation:
        return cls(limits=Limits.of(rules), device=device, warning=warning)

    def argv(self, stage: str, binds: dict[str, str], name: str) -> list[str]:
        """The command line of `stage` (export or measure) with `binds` (host path -> path inside,
        read-only); `name` is the worker's own (docker: its container's)."""
        raise NotImplementedError

    def out(self, work: Path) -> str:
        """The worker's writable folder, as it names it (`work`: its folder on the host)."""
        return SCRATCH

    def inside(self, host: str | Path, binds: dict[str, str]) -> str:
        """How the worker names the host path `host`: a bound path, or a path in a bound folder."""
        path = Path(host)
        for outside, inner in binds.items():
            if path == Path(outside):
                return inner
            if path.is_relative_to(outside):
                return f"{inner}/{path.relative_to(outside).as_posix()}"
        raise ValueError(f"{host} is not visible to the worker")

    def pid_of(self, name: str) -> int | None:
        """The host pid of a root of the worker's processes outside the tree of the process the runner
        started (None: there is none, or not yet)."""
        return None

    def stop(self, name: str) -> None:
        """End what killing the worker's process tree leaves running."""

    def killed_by(self, returncode: int | None) -> str | None:
        """The limit this isolation enforced itself, read from the worker's exit status (None: none)."""
        return None

    def reap_orphans(self) -> list[str]:
        """Remove workers left by judges of this host that have died; their names."""
        return []

    def environment(self) -> str | None:
        """What a stage's work depends on here besides the submission's files and the harness's code:
        the isolation, its limits and the software it runs (the backends add theirs: Python and the
        packages, or an image). Two judgements in the same environment export the same program
        (`harness.judge.programs`); None: it cannot be told, and no program is reused nor kept."""
        lim = self.limits
        return (f"isolation {self.kind}; limits {lim.timeout_s!r} s, {lim.memory_mb} MiB, {lim.processes} "
                f"processes, {lim.scratch_mb} MiB scratch")
