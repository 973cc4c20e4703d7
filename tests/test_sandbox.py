"""The sandbox: composed command lines (bwrap, docker), the view from inside, the limits, the Docker image."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import load_rules, parse_size, with_overrides
from harness.errors import ConfigError
from harness.jobs import BuildJob
from harness.judge import procs, runner, sandbox
from harness.judge.evaluate import judge
from harness.judge.isolation import Isolation, Limits

from .conftest import REPO
from .test_hostile import needs_bwrap, survivors

BUILD = {"/subs/a": "/submission"}  # stage 1 sees the submission
MEASURE = {"/tmp/judge/inbox": "/in", "/tmp/judge/images.npy": "/data/images.npy"}  # the program, shuffled images
NAME = "harness-worker-harness-x1"


def box(kind="bwrap", device="cpu", gpus=False, image="img:1", **limits) -> Isolation:
    lim = Limits(**{"timeout_s": 60, "memory_mb": 4096, "processes": 128, "scratch_mb": 256, **limits})
    backend = sandbox.BACKENDS[kind]
    extra = {"image": image, "gpus": gpus} if backend is sandbox.Docker else {}
    return backend(limits=lim, device=device, **extra)


def triples(argv: list[str]) -> list[tuple[str, str, str]]:
    return [tuple(argv[i:i + 3]) for i in range(len(argv) - 2) if argv[i].startswith("--")]


def test_bwrap_binds_an_environment_under_tmp_over_the_private_tmp():
    argv = sandbox.bwrap_argv("export", BUILD, box(), python="/tmp/venv/bin/python", mounts=["/tmp/venv"], env={})
    tmpfs = argv.index("/tmp", argv.index("--tmpfs"))
    bind = argv.index("--ro-bind", argv.index("/tmp/venv") - 1)
    assert argv[bind:bind + 3] == ["--ro-bind", "/tmp/venv", "/tmp/venv"] and tmpfs < bind


def test_bwrap_argv_exposes_only_the_environment_its_own_input_and_a_tmpfs():
    env = {"OMP_NUM_THREADS": "2", "SECRET_TOKEN": "hunter2", "HARNESS_CACHE": "/cache"}
    argv = sandbox.bwrap_argv("measure", MEASURE, box(), python="/opt/py/bin/python3",
                              mounts=["/opt/py", "/src/harness"], env=env)
    assert argv[:7] == ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                        "--clearenv"]
    assert argv[argv.index("--"):] == ["--", "/opt/py/bin/python3", "-m", "harness.measure"]
    inner = {k: v for flag, k, v in triples(argv) if flag == "--setenv"}
    assert set(inner) <= {"PATH", "HOME", "TMPDIR", "USER", "LOGNAME", "LANG", "PYTHONDONTWRITEBYTECODE",
                          "PYTHONUNBUFFERED", "PYTHONPATH", *sandbox.PASS_ENV, *sandbox.WORKER_ENV}
    assert inner["OMP_NUM_THREADS"] == "2" and inner["HOME"] == "/tmp" and "SECRET_TOKEN" not in inner
    binds = [t for t in triples(argv) if t[0] in ("--bind", "--ro-bind", "--dev-bind", "--bind-try")]
    assert ("--ro-bind", "/opt/py", "/opt/py") in binds and ("--ro-bind", "/src/harness", "/src/harness") in binds
    assert ("--ro-bind", "/tmp/judge/images.npy", "/data/images.npy") in binds  # the file, never its folder
    assert ("--ro-bind", "/tmp/judge/inbox", "/in") in binds
    assert "/submission" not in argv and "/subs/a" not in argv  # stage 2 never sees the submission
    assert [t for t in binds if t[0] != "--ro-bind"] == []  # nothing of the host is writable: only the tmpfs
    assert "/cache" not in argv and not any("labels" in a for a in argv) and "--share-net" not in argv
    size = str(256 * 2**20)
    assert argv.count("--tmpfs") == 2 and ["--size", size, "--tmpfs", "/tmp"] == argv[argv.index("--tmpfs") - 2:][:4]
    assert argv[argv.index("--chdir") + 1] == "/tmp"
    assert argv.index("--remount-ro") > max(i for i, a in enumerate(argv) if a in ("--bind", "--ro-bind"))
    build = sandbox.bwrap_argv("export", BUILD, box(), python="/p", mounts=[], env={})
    assert ("--ro-bind", "/subs/a", "/submission") in triples(build)  # stage 1 sees the submission, no images
    assert "/data/images.npy" not in build
    assert build[build.index("--"):] == ["--", "/p", "-m", "harness.export"]


def test_docker_argv_is_composed_exactly():
    argv = sandbox.docker_argv("measure", MEASURE, NAME, box("docker", gpus=True), user="1000:1000", parent="h:7")
    assert argv == [
        "docker", "run", "--rm", "-i", "--name", NAME, "--label", "cifar10-harness.parent=h:7",
        "--network", "none", "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=256m", "--shm-size", "256m",
        "--memory", "5120m", "--memory-swap", "5120m",  # the engine's limits stand a margin behind the runner's
        "--pids-limit", "144", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", "1000:1000",
        "-e", "HOME=/tmp", "-e", "PYTHONDONTWRITEBYTECODE=1", "-e", "PYTHONUNBUFFERED=1",
        "-e", "MALLOC_MMAP_THRESHOLD_=1073741824", "-e", "MALLOC_TRIM_THRESHOLD_=134217728",
        "-v", "/tmp/judge/inbox:/in:ro", "-v", "/tmp/judge/images.npy:/data/images.npy:ro",
        "-w", "/tmp", "--gpus", "all", "img:1", "python", "-m", "harness.measure"]
    plain = sandbox.docker_argv("export", BUILD, NAME, box("docker"))
    assert "--gpus" not in plain and "/data/images.npy" not in " ".join(plain) and "/subs/a:/submission:ro" in plain
    assert plain[plain.index("--user") + 1] == f"{os.getuid()}:{os.getgid()}"
    assert plain[plain.index("--label") + 1] == f"cifar10-harness.parent={os.uname().nodename}:{os.getpid()}"
    assert box("docker").argv("export", BUILD, NAME) == plain


def _fake_system(tmp_path, monkeypatch) -> str:
    """A host whose /usr is a folder and /bin a link into it (nothing else of _SYSTEM): the command
    line then depends on nothing of this machine."""
    (tmp_path / "usr").mkdir()
    (tmp_path / "bin").symlink_to("usr/bin")
    monkeypatch.setattr(sandbox, "_SYSTEM", (str(tmp_path / "usr"), str(tmp_path / "bin"), str(tmp_path / "lib32")))
    return str(tmp_path)


def test_the_command_lines_of_a_fixed_job_are_pinned(tmp_path, monkeypatch):
    """Every argument of the bwrap and docker command lines for one fixed job, as composed before the
    isolations became objects (`box.argv`); the none isolation runs the stage itself."""
    root = _fake_system(tmp_path, monkeypatch)
    env = {"OMP_NUM_THREADS": "2", "SECRET": "x", "CUDA_VISIBLE_DEVICES": "0"}
    package = str(sandbox.package_dir().parent)
    argv = sandbox.bwrap_argv("measure", MEASURE, box(), python="/opt/py/bin/python3",
                              mounts=["/opt/py", "/src/harness"], env=env)
    assert argv == [
        "bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
        "--setenv", "PATH", "/opt/py/bin:/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/tmp",
        "--setenv", "TMPDIR", "/tmp", "--setenv", "USER", "worker", "--setenv", "LOGNAME", "worker",
        "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONPATH", package,
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "PYTHONUNBUFFERED", "1",
        "--setenv", "MALLOC_MMAP_THRESHOLD_", "1073741824", "--setenv", "MALLOC_TRIM_THRESHOLD_", "134217728",
        "--setenv", "CUDA_VISIBLE_DEVICES", "0", "--setenv", "OMP_NUM_THREADS", "2",
        "--ro-bind", f"{root}/usr", f"{root}/usr", "--symlink", "usr/bin", f"{root}/bin",
        "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--ro-bind-try", "/etc/ld.so.conf",
        "/etc/ld.so.conf", "--ro-bind-try", "/etc/ld.so.conf.d", "/etc/ld.so.conf.d",
        "--proc", "/proc", "--dev", "/dev", "--size", "268435456", "--tmpfs", "/tmp",
        "--size", "268435456", "--tmpfs", "/dev/shm",
        "--ro-bind", "/opt/py", "/opt/py", "--ro-bind", "/src/harness", "/src/harness",
        "--ro-bind", "/tmp/judge/inbox", "/in", "--ro-bind", "/tmp/judge/images.npy", "/data/images.npy",
        "--remount-ro", "/", "--chdir", "/tmp", "--", "/opt/py/bin/python3", "-m", "harness.measure"]
    gpu = sandbox.bwrap_argv("measure", MEASURE, box(device="auto"), python="/opt/py/bin/python3",
                             mounts=["/opt/py", "/src/harness"], env=env)
    cut = argv.index("/dev/shm") + 1
    assert gpu == argv[:cut] + sandbox._gpu_mounts() + argv[cut:]  # the GPUs' nodes, where the device may be one
    docker = sandbox.docker_argv("export", BUILD, NAME, box("docker", memory_mb=1000, processes=10, scratch_mb=64))
    assert docker == [
        "docker", "run", "--rm", "-i", "--name", NAME, "--label",
        f"cifar10-harness.parent={os.uname().nodename}:{os.getpid()}", "--network", "none", "--read-only",
        "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m", "--shm-size", "64m", "--memory", "1250m",
        "--memory-swap", "1250m", "--pids-limit", "26", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--user", f"{os.getuid()}:{os.getgid()}", "-e", "HOME=/tmp", "-e", "PYTHONDONTWRITEBYTECODE=1",
        "-e", "PYTHONUNBUFFERED=1", "-e", "MALLOC_MMAP_THRESHOLD_=1073741824",
        "-e", "MALLOC_TRIM_THRESHOLD_=134217728", "-v", "/subs/a:/submission:ro", "-w", "/tmp", "img:1",
        "python", "-m", "harness.export"]
    assert box("docker", memory_mb=1000, processes=10, scratch_mb=64).argv("export", BUILD, NAME) == docker
    assert box().argv("measure", MEASURE, NAME) == sandbox.bwrap_argv("measure", MEASURE, box())
    assert box("none").argv("export", BUILD, NAME) == [sys.executable, "-m", "harness.export"]


def test_every_isolation_answers_the_same_interface(tmp_path, monkeypatch):
    """What the runner and the watch ask of an isolation, backend by backend: where the worker writes,
    how it names a host path, a root of its tree, the limit its exit status shows, orphans to reap."""
    none, bwrap, docker = box("none"), box("bwrap"), box("docker", memory_mb=300)
    work = tmp_path / "work"
    assert (none.kind, bwrap.kind, docker.kind) == ("none", "bwrap", "docker") and isinstance(docker, Isolation)
    assert none.out(work) == str(work) and bwrap.out(work) == docker.out(work) == "/tmp"
    assert none.inside("/tmp/judge/inbox/graph.pt2", MEASURE) == "/tmp/judge/inbox/graph.pt2"
    for confined in (bwrap, docker):
        assert confined.inside("/tmp/judge/inbox/graph.pt2", MEASURE) == "/in/graph.pt2"
        assert confined.inside("/tmp/judge/images.npy", MEASURE) == "/data/images.npy"
        with pytest.raises(ValueError, match="not visible to the worker"):
            confined.inside("/subs/a/model.py", MEASURE)
    assert [b.killed_by(137) for b in (none, bwrap)] == [None, None] and docker.killed_by(1) is None
    assert docker.killed_by(137) == "memory limit of 300 MiB (the engine killed its container, status 137)"
    assert none.pid_of(NAME) is None and bwrap.pid_of(NAME) is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker command: nothing is found, nothing to reap
    assert docker.pid_of(NAME) is None and [b.reap_orphans() for b in (none, bwrap, docker)] == [[], [], []]


def test_process_rows_are_read_by_name():
    row = procs.scan()[os.getpid()]
    assert row.ppid == os.getppid() and row.threads >= 1 and row.rss > 0 and row.state in (b"R", b"S")
    assert procs.descendants(procs.scan(), [os.getpid()])[os.getpid()].start == row.start


def test_the_docker_path_of_the_runner_with_a_fake_engine(tmp_path, monkeypatch):
    """No engine runs here: a fake `docker` records its arguments and the job, and dies like an OOM kill."""
    calls = tmp_path / "calls.jsonl"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, sys
        args = sys.argv[1:]
        job = json.loads(sys.stdin.readline()) if args[0] == "run" else None  # the job comes on stdin
        with open({str(calls)!r}, "a") as f:
            f.write(json.dumps({{"args": args, "job": job}}) + "\\n")
        sys.exit(137 if args[0] == "run" else 0)
        """))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    worker = runner.Worker("export", box("docker"), {str(tmp_path): sandbox.SUBMISSION},
                           job=BuildJob(submission="/submission", code="model.py", factory="build_model",
                                        weights="weights.pt", out="/tmp"))
    try:
        out = worker.finish()
    finally:
        worker.close()
    assert out.killed and "memory limit of 4096 MiB" in out.killed and out.result is None
    made = [json.loads(line) for line in calls.read_text().splitlines()]
    run_call, kill_call = made[0], made[-1]
    assert run_call["args"][:3] == ["run", "--rm", "-i"] and f"{tmp_path}:/submission:ro" in run_call["args"]
    assert run_call["job"] == {"submission": "/submission", "code": "model.py", "factory": "build_model",
                               "weights": "weights.pt", "out": "/tmp"}
    assert {c["args"][0] for c in made[1:-1]} <= {"inspect"}  # the runner looked for the container's processes
    name = run_call["args"][run_call["args"].index("--name") + 1]
    assert kill_call["args"] == ["kill", name]  # the container is killed even though the client exited


def test_choose_resolves_auto_and_refuses_what_is_missing(monkeypatch):
    rules = load_rules()
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bwrap (bubblewrap) is not installed")
    chosen = sandbox.choose(rules)
    assert chosen.kind == "none" and "not sandboxed: bwrap (bubblewrap) is not installed" in chosen.warning
    with pytest.raises(sandbox.SandboxError, match="apt-get install bubblewrap"):
        sandbox.choose(with_overrides(rules, isolation="bwrap"))
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(sandbox.SandboxError, match="no `docker` command"):
        sandbox.choose(with_overrides(rules, isolation="docker"))
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: None)
    limited = sandbox.choose(with_overrides(rules, timeout_s=5, memory_mb=512, max_processes=8), "cpu")
    assert (limited.kind, limited.warning, limited.device) == ("bwrap", None, "cpu")
    assert limited.limits == Limits(timeout_s=5, memory_mb=512, processes=8, scratch_mb=512)


def test_sizes_and_overrides():
    assert [parse_size(s) for s in ("4096", "512M", "8G", "8g", "1.5GiB", "1T")] == [
        4096, 512, 8192, 8192, 1536, 2**20]
    for bad in ("lots", "-1", "0"):
        with pytest.raises(ConfigError):
            parse_size(bad)
    with pytest.raises(ConfigError, match="memory_mb"):
        with_overrides(load_rules(), memory_mb=10)
    assert with_overrides(load_rules(), timeout_s=None) == load_rules()


def test_cli_sandbox_options(capsys, monkeypatch, oracle, tmp_path):
    assert main(["profile", str(oracle), "--memory", "lots"]) == 2
    assert "not a size" in capsys.readouterr().err
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bwrap (bubblewrap) is not installed")
    assert main(["profile", str(oracle), "--isolation", "bwrap"]) == 3
    assert "isolation bwrap: bwrap (bubblewrap) is not installed" in capsys.readouterr().err
    assert main(["profile", str(oracle), "--json", "--timeout", "120", "--memory", "2G", "--processes", "64"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["provenance"]["isolation"] == "none" and rec["warnings"][0].startswith("not sandboxed: bwrap")
    assert {k: rec["provenance"]["rules"][k] for k in ("timeout_s", "memory_mb", "max_processes")} == {
        "timeout_s": 120, "memory_mb": 2048, "max_processes": 64}


def _script_worker(monkeypatch, script: str, *args: str) -> None:
    """Make the runner start `script` (python -c) instead of the real worker, in any isolation."""
    monkeypatch.setattr(sandbox, "worker_argv", lambda python, stage: [python, "-c", textwrap.dedent(script), *args])


SPAWN = """
import os, subprocess, sys, time
env = {**os.environ, "HOSTILE_MARKER": sys.argv[1]}
for _ in range(300):
    subprocess.Popen(["/bin/sh", "-c", "sleep 600; exit 0", sys.argv[1]], env=env, start_new_session=True)
    time.sleep(0.01)
"""
HOG = """
hoard = []
for _ in range(60):
    hoard.append(b"x" * (20 * 2**20))
"""


FLOOD = """
import sys
while True:
    sys.stderr.write("spam " * 100_000)
"""


@pytest.mark.parametrize("isolation", ["none", "bwrap", pytest.param("docker", marks=pytest.mark.release)])
@pytest.mark.parametrize("limit", ["time", "memory", "processes", "log"])
def test_limits_kill_the_whole_tree_with_the_same_words_in_every_isolation(monkeypatch, tmp_path, isolation, limit):
    problem = {"none": None, "bwrap": sandbox.bwrap_problem(), "docker": sandbox.docker_problem(sandbox.DEFAULT_IMAGE)}
    if problem[isolation]:
        pytest.skip(problem[isolation])
    marker = f"limit-{uuid.uuid4().hex[:12]}"
    script = {"time": "import time; time.sleep(600)", "memory": HOG, "processes": SPAWN, "log": FLOOD}[limit]
    _script_worker(monkeypatch, script, marker)
    monkeypatch.setattr(runner.tempfile, "tempdir", str(tmp_path))
    limits = box(isolation, image=sandbox.DEFAULT_IMAGE, timeout_s=4 if limit == "time" else 60, memory_mb=300,
                 processes=24, scratch_mb=16)
    worker = runner.Worker("export", limits, {str(tmp_path): sandbox.SUBMISSION},
                           job=BuildJob(submission="/submission", code="m.py", factory="f", weights="w", out="/tmp"))
    try:
        out = worker.finish()
    finally:
        worker.close()
    expected = {"time": "time limit of 4 s", "memory": "memory limit of 300 MiB", "processes": "process limit of 24",
                "log": "log limit of 16 MiB (its output reached it)"}
    assert out.killed and out.killed.startswith(expected[limit]), (out.killed, out.log)
    assert survivors(marker, tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_what_a_worker_sends_is_read_within_limits(tmp_path):
    """The receiver takes the expected names within their sizes; `wire.load` parses within a depth."""
    import io

    from harness import wire

    def received(data: bytes, limits=None):
        folder = tmp_path / uuid.uuid4().hex
        folder.mkdir()
        r = wire.Receiver(io.BytesIO(data), folder, limits or {"result.json": 100, "graph.pt2": 10})
        r.join(5)
        return r

    good = received(b"FILE result.json 7\n{\"a\":1}FILE graph.pt2 3\nabc")
    assert good.problem is None and good.files["graph.pt2"].read_bytes() == b"abc"
    assert wire.load(good.files["result.json"].read_bytes()) == {"a": 1}
    for data, problem in [(b"hello\n", "not the harness's protocol"), (b"FILE job.json 1\nx", "not expected"),
                          (b"FILE graph.pt2 11\n" + b"x" * 11, "over the"), (b"FILE graph.pt2 5\nab", "ended inside"),
                          (b"FILE graph.pt2 1\naFILE graph.pt2 1\nb", "twice"), (b"x" * 500, "protocol")]:
        assert problem in received(data).problem, (data[:20], received(data).problem)
    for data, problem in [(b"[" * 200_000 + b"]" * 200_000, "RecursionError"), (b"[1, 2]", "not a mapping"),
                          (b'{"p": ' + b"9" * 5000 + b"}", "4300 digits"), (b"\xff", "not valid JSON"),
                          (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "41 levels deep")]:
        with pytest.raises(wire.WireError, match=problem):
            wire.load(data)


@needs_bwrap
def test_the_view_from_inside_the_sandbox(tmp_path):
    """Inside: the images file only (no labels, no cache folder), nothing else of the repository or of
    home, no network, no writes but to a private /tmp, an empty environment."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "abc.images.npy").write_bytes(b"images")
    (cache / "abc.labels.npy").write_bytes(b"labels")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "probe.py").write_text(PROBE)
    mounts = sandbox.python_mounts()
    home = [str(p) for p in Path.home().iterdir()
            if not any(m == str(p) or m.startswith(f"{p}/") for m in mounts)]
    tmp_name = f"/tmp/probe-{uuid.uuid4().hex[:8]}"
    args = {"labels": str(cache / "abc.labels.npy"), "cache": str(cache), "repo": str(REPO), "home": home,
            "tmp": tmp_name}
    argv = sandbox.bwrap_argv("export", {str(sub): sandbox.SUBMISSION, str(cache / "abc.images.npy"): sandbox.IMAGES},
                              box())
    argv = argv[:argv.index("--") + 1] + [sys.executable, "/submission/probe.py", json.dumps(args)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, "SECRET": "x"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["data"] == ["images.npy"] and seen["images"] == "images"
    assert not seen["labels"] and not seen["cache"] and seen["home"] == []
    assert seen["repo"] in (None, ["harness"])  # an editable install exposes its package folder, nothing else
    assert "Network is unreachable" in seen["net"] and seen["interfaces"] == ["lo"]
    assert seen["writes"].pop(tmp_name) == "ok"
    # Writes fail everywhere but in the private tmpfs (where a checkout under /tmp also appears)...
    assert all(v != "ok" for k, v in seen["writes"].items() if not k.startswith("/tmp/")), seen["writes"]
    assert not [k for k in seen["writes"] if Path(k).exists()]  # ...and none reaches the host
    assert not Path(tmp_name).exists() and not (sub / "x").exists()
    assert "SECRET" not in seen["env"] and "HARNESS_CACHE" not in seen["env"]
    assert len(seen["pids"]) <= 3  # its own PID namespace: bwrap's init and the probe


PROBE = """
import json, os, socket, sys
from pathlib import Path

args = json.loads(sys.argv[1])
seen = {"data": sorted(os.listdir("/data")), "images": Path("/data/images.npy").read_text(),
        "labels": os.path.exists(args["labels"]), "cache": os.path.exists(args["cache"]),
        "repo": sorted(os.listdir(args["repo"])) if os.path.isdir(args["repo"]) else None,
        "home": [p for p in args["home"] if os.path.lexists(p)],
        "interfaces": [name for _, name in socket.if_nameindex()],
        "env": sorted(os.environ), "pids": [p for p in os.listdir("/proc") if p.isdigit()]}
try:
    socket.create_connection(("1.1.1.1", 80), timeout=5)
    seen["net"] = "connected"
except OSError as err:
    seen["net"] = str(err)
seen["writes"] = {}
for path in ["/submission/x", "/x", "/data/x", args["repo"] + "/x", args["repo"] + "/harness/x", "/usr/x",
             args["tmp"]]:
    try:
        Path(path).write_text("x")
        seen["writes"][path] = "ok"
    except OSError as err:
        seen["writes"][path] = err.strerror
print(json.dumps(seen))
"""


def test_without_bwrap_auto_runs_unconfined_and_says_so(monkeypatch, oracle):
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bwrap (bubblewrap) is not installed")
    rec = judge(oracle, None, load_rules())
    assert rec.status == "ok" and rec.provenance.isolation == "none"
    assert rec.warnings[0].startswith("not sandboxed: bwrap (bubblewrap) is not installed")


def test_dockerfile_installs_the_project_like_ci():
    """The image installs the project as .ci/run does: the same extras, the same lock."""
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE=python:3\.11[\w.-]*$", dockerfile, re.M)  # the lock is made for Python 3.11
    assert re.search(r"^FROM \$\{?BASE\}?", dockerfile, re.M)
    for needed in ("pyproject.toml", "README.md", "harness", "requirements"):  # what `pip install .` reads
        assert re.search(rf"^COPY .*\b{re.escape(needed)}\b", dockerfile, re.M), needed
    ci = (REPO / ".ci" / "run").read_text()
    install = re.search(r"pip install [^\n]*-c (\S+) -e '(\.\[\w+\])'", ci)
    assert install, "`.ci/run` installs with the lock as constraints"
    assert re.search(rf"pip install [^\n]*-c {re.escape(install.group(1))} '{re.escape(install.group(2))}'",
                     dockerfile)  # same lock, same project, same extras
    readme = (REPO / "docker" / "README.md").read_text()
    assert f"docker build -f docker/Dockerfile -t {load_rules().docker_image.split(':')[0]} ." in readme
    assert "--gpus all" in readme


def test_an_image_built_from_another_lock_is_refused(monkeypatch):
    lock = (REPO / "requirements" / "lock.txt").read_bytes()
    assert sandbox._lock_problem("img", hashlib.sha256(lock).hexdigest()) is None
    assert sandbox._lock_problem("img", "") is None  # built by hand, without the label: nothing to compare
    assert "another requirements/lock.txt" in sandbox._lock_problem("img", "0" * 64)
