"""Where the worker runs, the isolation backends: unconfined, in a bubblewrap sandbox, or in a Docker container.

Both stages run here. Stage 1 (`harness.export`) executes a submission's untrusted code; stage 2
(`harness.measure`) runs harness code on the program stage 1 exported, as hostile as the
submission. Under `bwrap` or `docker` each sees only

* the Python environment, read-only (its prefixes, the site-packages holding torch and numpy,
  and the harness package's own folder; under docker, the image's),
* stage 1: the submission directory, read-only, at `/submission`; stage 2: the unlabelled test
  images, in this evaluation's random order, read-only, at `/data/images.npy` (never the cache
  folder, where the labels lie), and its inbox, read-only, at `/in` (the exported program),
  never the submission;
* as its only writable space, tmpfs mounts of `scratch_mb` at `/tmp` (its working folder) and
  `/dev/shm`: in memory, never the host's disk. Its job comes on stdin and its files leave on
  stdout (`harness.wire`);

with no network (a private network namespace with only loopback), its own PID namespace, a
read-only root, no capabilities and an environment cleared but for a few variables.

The isolations are the backends of one interface (`harness.judge.isolation.Isolation`):
`Unconfined` (none), `Bubblewrap` (bwrap) and `Docker` (docker), each composing its command line
(`bwrap_argv()` and `docker_argv()`, pure functions of their arguments) and doing what only it
needs: docker finds its container's processes, kills the container and reaps those of judges
that died. `choose()` turns the competition's `isolation: auto|none|bwrap|docker` and limits into
one of them (`BACKENDS`); a further backend is one more class and one more entry there.

The limits themselves (time, memory, processes, log size) are enforced by `harness.judge.watch`,
with the same messages under every isolation; under docker the engine's `--memory` and
`--pids-limit` stand behind them, a margin higher.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import shutil
import site
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import HarnessError
from . import procs
from .isolation import SCRATCH, Isolation, Limits

if TYPE_CHECKING:
    from ..config import Rules

SUBMISSION = "/submission"
IMAGES = "/data/images.npy"
INBOX = "/in"
DEFAULT_IMAGE = "cifar10-harness:latest"
LOCK_LABEL = "cifar10-harness.lock"  # docker/build.sh: the sha256 of requirements/lock.txt
# Variables the worker may inherit (threading and CUDA settings); everything else is cleared.
PASS_ENV = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTORCH_CUDA_ALLOC_CONF", "CUBLAS_WORKSPACE_CONFIG",
            "LD_LIBRARY_PATH")
# Set for every worker, in every isolation. The MALLOC_ pair: glibc's malloc otherwise maps and
# unmaps each large activation tensor, page-faulting it in anew at every batch: up to 40 % of a CPU
# evaluation in system time (benchmarks/bench_eval.py). Keeping freed memory in the heap for reuse
# costs little more peak memory. Other C libraries ignore these names.
WORKER_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
              "MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**27)}
# The packages a submission's code may import in stage 1 (harness.export.imports.PROVIDED) and those
# its loader reads weights with: their versions are part of stage 1's environment (`python_environment`).
STAGE_PACKAGES = ("torch", "torchvision", "brevitas", "numpy", "safetensors")
LABEL = "cifar10-harness.parent"  # docker label of a worker container: "host:pid" of the judge that started it
DOCKER_MEMORY_MARGIN = 1.25  # docker's --memory, over the watch's own memory limit
DOCKER_PIDS_MARGIN = 16  # docker's --pids-limit, over the watch's own process limit
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_LDSO = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d")


class SandboxError(HarnessError):
    """The isolation asked for cannot be had on this machine."""


@dataclass(frozen=True)
class Unconfined(Isolation):
    """Isolation none: the stage runs as a plain child process, in a host folder, under the time,
    memory, process and log limits only. For trusted code."""

    kind: ClassVar[str] = "none"

    def argv(self, stage: str, binds: dict[str, str], name: str) -> list[str]:
        return worker_argv(sys.executable, stage)

    def out(self, work: Path) -> str:
        return str(work)

    def inside(self, host: str | Path, binds: dict[str, str]) -> str:
        return str(host)

    def environment(self) -> str | None:
        return f"{super().environment()}; {python_environment()}"


@dataclass(frozen=True)
class Bubblewrap(Isolation):
    """Isolation bwrap: the stage in a bubblewrap sandbox (`bwrap_argv`); its PID namespace dies with it."""

    kind: ClassVar[str] = "bwrap"
    remedy: ClassVar[str] = "install bubblewrap (apt-get install bubblewrap) or choose --isolation none|docker"

    @classmethod
    def problem(cls, rules: Rules) -> str | None:
        return bwrap_problem()

    def argv(self, stage: str, binds: dict[str, str], name: str) -> list[str]:
        return bwrap_argv(stage, binds, self)

    def environment(self) -> str | None:
        return f"{super().environment()}; {python_environment()}"


@dataclass(frozen=True)
class Docker(Isolation):
    """Isolation docker: the stage in a container of `image` (`docker_argv`), all GPUs with `gpus`.
    Its processes descend from the engine, not from the `docker run` client the runner starts."""

    kind: ClassVar[str] = "docker"
    remedy: ClassVar[str] = "see docker/README.md"
    image: str = DEFAULT_IMAGE
    gpus: bool = False

    @classmethod
    def problem(cls, rules: Rules) -> str | None:
        return docker_problem(rules.docker_image)

    @classmethod
    def from_rules(cls, rules: Rules, device: str = "auto", warning: str | None = None) -> Docker:
        return cls(limits=Limits.of(rules), device=device, warning=warning, image=rules.docker_image,
                   gpus=rules.docker_gpus)

    def argv(self, stage: str, binds: dict[str, str], name: str) -> list[str]:
        return docker_argv(stage, binds, name, self)

    def environment(self) -> str | None:
        """The image, by its id (the same tag may name another build): its Python, packages and harness."""
        return f"{super().environment()}; image {self.image_id}" if self.image_id else None

    @functools.cached_property
    def image_id(self) -> str | None:
        """The id of `image` (`docker image inspect`), asked once; None when the engine does not say."""
        try:
            done = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", self.image],
                                  capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        found = done.stdout.strip()
        return found if done.returncode == 0 and found else None

    def pid_of(self, name: str) -> int | None:
        """The host pid of the container's first process, once it runs."""
        try:
            done = subprocess.run(["docker", "inspect", "--format", "{{.State.Pid}}", name], capture_output=True,
                                  text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        pid = done.stdout.strip()
        return int(pid) if pid.isdigit() and int(pid) > 0 else None

    def stop(self, name: str) -> None:
        """The container, killed even when its client has exited."""
        subprocess.run(["docker", "kill", name], capture_output=True, timeout=60, check=False)

    def killed_by(self, returncode: int | None) -> str | None:
        """The engine's memory limit, standing a margin behind the watch's (status 137)."""
        if returncode == 137:
            return f"memory limit of {self.limits.memory_mb} MiB (the engine killed its container, status 137)"
        return None

    def reap_orphans(self) -> list[str]:
        """Kill worker containers left by judges of this host that have died (`LABEL`); their names."""
        try:
            done = subprocess.run(["docker", "ps", "--filter", f"label={LABEL}", "--format",
                                   f'{{{{.Names}}}} {{{{.Label "{LABEL}"}}}}'],
                                  capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return []
        host = os.uname().nodename
        dead = []
        for line in done.stdout.splitlines():
            name, _, parent = line.partition(" ")
            where, _, pid = parent.rpartition(":")
            if where == host and pid.isdigit() and not procs.alive(int(pid)):
                dead.append(name)
        if dead:
            subprocess.run(["docker", "kill", *dead], capture_output=True, timeout=60, check=False)
        return dead


BACKENDS: dict[str, type[Isolation]] = {b.kind: b for b in (Unconfined, Bubblewrap, Docker)}


def choose(rules: Rules, device: str = "auto") -> Isolation:
    """The isolation for `rules` (a `harness.config.Rules`): resolves `auto` (bwrap where it works,
    else none with a warning), refuses one that cannot run here."""
    if rules.isolation == "auto":
        if problem := bwrap_problem():
            return Unconfined.from_rules(rules, device, warning=(
                f"not sandboxed: {problem}; the submission's code ran unconfined (isolation none). "
                "Install bubblewrap (apt-get install bubblewrap) to confine it"))
        return Bubblewrap.from_rules(rules, device)
    backend = BACKENDS[rules.isolation]
    if problem := backend.problem(rules):
        raise SandboxError(f"isolation {backend.kind}: {problem}; {backend.remedy}")
    return backend.from_rules(rules, device)


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """None when bubblewrap is installed and can create its namespaces here, else why not."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bwrap (bubblewrap) is not installed"
    argv = [exe, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", *_system_mounts(),
            "--proc", "/proc", "--dev", "/dev", "--size", str(2**20), "--tmpfs", "/tmp", "--remount-ro", "/",
            "--", "/bin/true" if Path("/bin/true").exists() else "true"]  # every feature the real sandbox uses
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap cannot run: {err}"
    if done.returncode != 0:
        return f"bwrap cannot create its sandbox here: {done.stderr.strip() or f'status {done.returncode}'}"
    return None


def docker_problem(image: str) -> str | None:
    """None when a Docker engine answers and holds `image`, else why not."""
    if shutil.which("docker") is None:
        return "no `docker` command on PATH"
    try:
        done = subprocess.run(["docker", "image", "inspect", "--format", '{{index .Config.Labels "' + LOCK_LABEL
                               + '"}}', image], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"docker cannot run: {err}"
    if done.returncode == 0:
        return _lock_problem(image, done.stdout.strip())
    if "daemon" in done.stderr or "connect" in done.stderr:
        return f"no Docker engine answers ({done.stderr.strip().splitlines()[-1][:200]}); start one"
    return f"the image {image} is not built here; build it with `bash docker/build.sh`"


def _lock_problem(image: str, label: str) -> str | None:
    """The image must hold the packages of this checkout's lock (docker/build.sh labels it with the
    lock's sha256): records made in it would otherwise name other versions than a local run's."""
    lock = Path(__file__).resolve().parents[2] / "requirements" / "lock.txt"
    if not label or label == "<no value>" or not lock.is_file():
        return None  # built by hand, or an installed harness without its checkout: nothing to compare
    if hashlib.sha256(lock.read_bytes()).hexdigest() != label:
        return (f"the image {image} was built from another requirements/lock.txt than this checkout's; "
                "rebuild it with `bash docker/build.sh`")
    return None


@functools.lru_cache(maxsize=1)
def python_environment() -> str:
    """This Python and the versions of `STAGE_PACKAGES`, read from their metadata (never imported: the
    parent does not load torch): the software stage 1 runs under isolation none and bwrap."""
    versions = []
    for name in STAGE_PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} absent")
    return f"python {sys.version}; " + "; ".join(versions)


def worker_argv(python: str, stage: str) -> list[str]:
    """A stage's own command line: `stage` is export (stage 1) or measure (stage 2)."""
    return [python, "-m", f"harness.{stage}"]


def bwrap_argv(stage: str, binds: dict[str, str], box: Isolation, python: str | None = None,
               mounts: list[str] | None = None, env: dict[str, str] | None = None) -> list[str]:
    """bubblewrap's command line running `stage` with `binds` (host path -> path inside) read-only:
    the submission for stage 1, the test images and the inbox for stage 2.

    `mounts` (default `python_mounts()`) are bound read-only at their own paths; `env`
    (default `os.environ`) supplies the few variables in `PASS_ENV`.
    """
    python = python or sys.executable
    mounts = python_mounts() if mounts is None else mounts
    source: Mapping[str, str] = os.environ if env is None else env
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    for key, value in _inside_env(python, source).items():
        argv += ["--setenv", key, value]
    argv += _system_mounts()
    argv += ["--proc", "/proc", "--dev", "/dev"]
    size = str(box.limits.scratch_mb * 2**20)
    argv += ["--size", size, "--tmpfs", SCRATCH, "--size", size, "--tmpfs", "/dev/shm"]
    if box.device != "cpu":
        argv += _gpu_mounts()
    for path in mounts:  # after the tmpfs: an environment installed under /tmp stays visible
        argv += ["--ro-bind", path, path]
    for host, inner in binds.items():
        argv += ["--ro-bind", str(host), inner]
    argv += ["--remount-ro", "/", "--chdir", SCRATCH, "--"]
    return argv + worker_argv(python, stage)


def docker_argv(stage: str, binds: dict[str, str], name: str, box: Docker, user: str | None = None,
                parent: str | None = None) -> list[str]:
    """`docker run` of the worker in `box.image` as container `name`, with the same mounts as under bwrap.

    The container runs as `user` (default: this process's uid:gid), keeps its stdin open (`-i`:
    the job comes there, and its end stops the worker), and carries the label `LABEL=parent`
    (default: this host and process) so that a later judge can remove it if this one dies;
    `--gpus all` is added when `box.gpus`.
    """
    lim = box.limits
    user = user or f"{os.getuid()}:{os.getgid()}"
    parent = parent or owner()
    memory = f"{int(lim.memory_mb * DOCKER_MEMORY_MARGIN)}m"
    argv = ["docker", "run", "--rm", "-i", "--name", name, "--label", f"{LABEL}={parent}", "--network", "none",
            "--read-only", "--tmpfs", f"{SCRATCH}:rw,nosuid,nodev,size={lim.scratch_mb}m",
            "--shm-size", f"{lim.scratch_mb}m", "--memory", memory, "--memory-swap", memory,
            "--pids-limit", str(lim.processes + DOCKER_PIDS_MARGIN),
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", user,
            "-e", f"HOME={SCRATCH}", *[arg for key, value in WORKER_ENV.items() for arg in ("-e", f"{key}={value}")]]
    for host, inner in binds.items():
        argv += ["-v", f"{host}:{inner}:ro"]
    argv += ["-w", SCRATCH]
    if box.gpus:
        argv += ["--gpus", "all"]
    return argv + [box.image] + worker_argv("python", stage)


def owner() -> str:
    """This judge, as docker labels name it: host and process id."""
    return f"{os.uname().nodename}:{os.getpid()}"


def container_name(key: str | Path) -> str:
    """The worker's name, unique per worker (`key`: its host folder); under docker its container's,
    so that the watch can find and `docker kill` it."""
    return "harness-worker-" + re.sub(r"[^A-Za-z0-9_.-]", "-", Path(key).name)


def python_mounts() -> list[str]:
    """Folders the worker needs read-only: Python's prefixes, the site-packages of torch and numpy,
    the user site when it is on sys.path, and the harness package itself (possibly an editable
    checkout, of which only the package folder is exposed)."""
    found = [sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()]
    user_site = site.getusersitepackages()
    if user_site in sys.path:
        found.append(user_site)
    for name in ("torch", "numpy"):
        spec = importlib.util.find_spec(name)  # locates without importing
        if spec is not None and spec.origin:
            found.append(str(Path(spec.origin).resolve().parents[1]))
    found.append(str(package_dir()))
    found += [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p.startswith("/")]
    return _outermost(p for p in found if p and Path(p).is_dir())


def _inside_env(python: str, env) -> dict[str, str]:
    out = {"PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": SCRATCH, "TMPDIR": SCRATCH,
           "USER": "worker", "LOGNAME": "worker", "LANG": "C.UTF-8", "PYTHONPATH": str(package_dir().parent),
           **WORKER_ENV}
    out.update({k: env[k] for k in PASS_ENV if k in env})
    return out


def _system_mounts() -> list[str]:
    """/usr and the top-level links into it (or folders) as on the host, and the loader's cache."""
    argv = []
    for path in _SYSTEM:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    for path in _LDSO:
        argv += ["--ro-bind-try", path, path]
    return argv


def _gpu_mounts() -> list[str]:
    """NVIDIA device nodes and /sys (read-only) for CUDA, when this machine has them."""
    nodes = sorted(str(p) for p in Path("/dev").glob("nvidia*") if not p.is_dir())
    argv = [arg for node in nodes for arg in ("--dev-bind", node, node)]
    return argv + ["--ro-bind", "/sys", "/sys"] if nodes else argv


def package_dir() -> Path:
    """The harness package's folder (this module lives in its `judge` subpackage)."""
    return Path(__file__).resolve().parents[1]


def _outermost(paths) -> list[str]:
    """Unique paths, dropping any that lies inside another, in first-seen order."""
    unique = list(dict.fromkeys(os.path.normpath(p) for p in paths))
    return [p for p in unique if not any(q != p and p.startswith(q.rstrip("/") + "/") for q in unique)]
