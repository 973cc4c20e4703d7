"""The hostile-submission suite (tests/hostile/), evaluated in one `evaluate` call under bubblewrap
(default tier), and the cases whose outcome depends on the isolation again under docker (release
tier, where an engine runs and the image is built: docker/build.sh).

Every case must end as a clear record (status and message), the same under both, the harness
must go on to the next submission, every record must be written, nothing may leak out of the
sandbox and no process (nor container) may outlive the evaluation. The parent's refusals and the
score attacks do not depend on where the stages run (the parent and stage 2's code are the same),
so docker repeats only the sandbox cases. CI installs bubblewrap and the Docker engine and builds
the image (.ci/run), so all of these run there.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from harness.judge import sandbox
from harness.record import read

from .conftest import REPO, class_images, write_folder

HOSTILE = Path(__file__).with_name("hostile")
# the big honest network of several cases (ATTACKS.md): its max pool reads 32 x 32 x 32 values (one
# accumulate each) and the oracle takes the maximum of two levels (one), since the closed cost model
HONEST_BIG = {"params": 1_055_134, "macs": 1_938_964 + 32_768 + 1}


@dataclass(frozen=True)
class Case:
    """What the record of a hostile case must say: its status, a fragment of its errors (or of its
    failed claims), and the numbers the judge itself must have found."""

    status: str
    fragment: str | None = None
    eligible: bool = False
    numbers: dict = field(default_factory=dict)  # record field -> exact value
    accuracy_at_most: float | None = None
    score_at_least: float | None = None


# case -> what its record must say; the order is the evaluation's: killers in the middle.
EXPECTED = {
    # the sandbox: the submission's code cannot escape, hang, flood or starve the judge
    "broken_yaml": Case("invalid", "not valid YAML"),
    "unknown_key": Case("invalid", "compresion: unknown key"),
    "missing_file": Case("invalid", "file 'missing.pt' not found"),
    # the parent reads nothing outside a submission, nothing unbounded, and names any team safely
    "manifest_link": Case("invalid", "outside the submission directory", numbers={"team": "unknown"}),
    "weights_link": Case("invalid", "outside the submission directory"),
    "huge_manifest": Case("invalid", "more than the 64 KiB a manifest may hold"),
    "yaml_aliases": Case("invalid", "aliases (*name) are not allowed"),
    "bad_team": Case("invalid", "team: String should have at most 64 characters", numbers={"team": "a-b-" + "x" * 60}),
    "fifo_file": Case("invalid", "a FIFO; a submission holds only files"),
    "big_files": Case("invalid", "more than 64 MiB (the competition's submission_mb)"),
    "pickle_weights": Case("invalid", "weights_only=True"),
    "infinite_loop": Case("error", "time limit of"),
    "factory_raises": Case("error", "build_model() raised ValueError: no model today"),
    "memory_hog": Case("error", "memory limit of 2400 MiB"),
    "wrong_shape": Case("invalid", "expected [16, 10]"),
    "process_spawner": Case("error", "process limit of 48"),
    "nan_output": Case("error", "NaN"),
    "log_flood": Case("error", "log limit of 32 MiB"),
    "state_mismatch": Case("invalid", "missing keys: 1.bias"),
    "network_call": Case("error", "Network is unreachable"),
    "forged_result": Case("error", "malformed result"),
    "result_nested": Case("error", "result.json: not valid JSON (RecursionError"),
    "disk_filler": Case("error", "disk limit of 32 MiB"),
    "writes_outside": Case("error", "of 5 writes outside the scratch folder succeeded"),  # none reached the host
    "label_thief": Case("error", "no test labels found on disk"),
    # the score: what is counted is what the graph that answered computes (tests/hostile/ATTACKS.md)
    "measure_patched": Case("ok", "weight_bits: declared 1, measured 32", numbers=HONEST_BIG),
    "negative_counts": Case("ok", eligible=True, numbers=HONEST_BIG),
    "dispatch_escape": Case("invalid", "does not export with torch.export"),
    "dispatch_escape_c": Case("invalid", "does not export with torch.export"),
    "decoy": Case("ok", "weight_bits: declared 1, measured", numbers={"params": 11}),  # judged as the decoy
    "params_as_buffers": Case("ok", eligible=True, numbers=HONEST_BIG),
    "zero_padding": Case("ok", eligible=True, score_at_least=0.006643),  # the score without the padding
    "unfold_conv": Case("ok", eligible=True, numbers={"params": 468, "macs": 388_800 + 14_000 + 14_400 + 1}),
    "fft_conv": Case("invalid", "FFT has no multiply-accumulate rule"),
    "einsum_conv": Case("ok", "weight_bits: declared 1, measured 32"),
    "one_value_channels": Case("ok", "weight_bits: declared 1, measured 32"),
    "order_lookup": Case("ok", accuracy_at_most=0.3),
    "images_file_lookup": Case("invalid", "does not export with torch.export"),
    "torch_ao": Case("invalid", "torch.ao quantized modules"),
    # attention as the closed cost model counts it (L = 64, E = 64, H = 4): the in-projection's bias added
    # apart (L x 3E), the softmax and the any() of export's masked softmax (H x L x L each), two layer
    # norms per encoder layer (statistics and affine: 2 x L x E each), the oracle's maximum (1)
    "transformer": Case("ok", eligible=True, numbers={"params": 70_750, "macs": 5_440_138 + 4 * 4096 + 4618 + 2 * (
        64 * 192 + 2 * 4 * 64 * 64 + 2 * (2 * 64 * 64)) + 1}),
    "mha": Case("ok", eligible=True, numbers={"params": 20_446, "macs": 1_770_122 + 4618 + 64 * 192 + 2 * 4 * 64 * 64
                                                                         + 1}),
    # inside the exported graph: the closed cost model (ATTACKS.md, round 3; each model.py's HONEST header)
    "norm_stats_weights": Case("ok", eligible=True, numbers={"params": 1_820, "macs": 1_583_655 + 1},
                               score_at_least=0.00598),  # the oracle's maximum: one accumulate
    "graph_literals": Case("ok", eligible=True, score_at_least=0.0012, numbers={"macs": 27_698 + 1}),
    "stored_lookup": Case("ok", "weight_bits: declared 4, measured 32", numbers={"params": 6_975}),
    "where_products": Case("ok", "weight_bits: declared 4, measured 32", score_at_least=0.002156),
    "free_reductions": Case("ok", eligible=True, numbers={"params": 468}, score_at_least=0.001498),
    "probe_decoy": Case("invalid", "computes with its batch size"),
    "mixed_use_credit": Case("ok", "unstructured_pruning: declared 0.9300", score_at_least=0.0363),
    "broadcast_mask": Case("ok", "unstructured_pruning: declared 0.9900, measured only 0.5015",
                           numbers={"params": 196_884}, score_at_least=0.0029),
    "budget_bomb": Case("error", "beyond the judge's budget"),
    "escape_names": Case("error", "raised ValueError"),
    "pruned_twice": Case("ok", eligible=True, numbers={"params": 244}, score_at_least=0.00146),
}
# what the isolation decides: the stages' limits, their view of the host, what their code may reach
SANDBOXED = ("pickle_weights", "infinite_loop", "factory_raises", "memory_hog", "wrong_shape", "process_spawner",
             "nan_output", "log_flood", "network_call", "forged_result", "result_nested", "disk_filler",
             "writes_outside", "label_thief")
CASES = {"bwrap": tuple(EXPECTED), "docker": SANDBOXED}
GENERATED = [c for c, e in EXPECTED.items() if list(EXPECTED).index(c) >= list(EXPECTED).index("measure_patched")]
SUITE_RULES = {"timeout_s": 60, "memory_mb": 2400, "max_processes": 48, "scratch_mb": 32,
               "submission_mb": 64}
REFUSED = ("broken_yaml", "unknown_key", "missing_file", "manifest_link", "weights_link", "huge_manifest",
           "yaml_aliases", "bad_team", "fifo_file", "big_files")  # never built: no weights needed

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_problem() is not None,
                                 reason=f"bubblewrap unusable here: {sandbox.bwrap_problem()}")


class _Boom:
    """A pickle that would run a shell command when loaded."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def prepare(root: Path, marker: str, targets: list[Path], cases=tuple(EXPECTED)) -> dict[str, Path]:
    """Copy `cases` under `root`, with the weights, targets and marker files they need."""
    import torch

    dirs = {}
    for case in cases:
        folder = shutil.copytree(HOSTILE / case, root / case)
        dirs[case] = folder
        if case in REFUSED or case in GENERATED:
            continue
        if case == "pickle_weights":
            (folder / "weights.pt").write_bytes(pickle.dumps(_Boom(root / "PWNED-pickle")))
        elif case == "state_mismatch":
            torch.save({"1.weight": torch.zeros(10, 3072), "extra": torch.zeros(1)}, folder / "weights.pt")
        elif case == "wrong_shape":
            torch.save({"1.weight": torch.zeros(7, 3072), "1.bias": torch.zeros(7)}, folder / "weights.pt")
        else:
            torch.save({}, folder / "weights.pt")  # the model has no parameters, or never gets to load them
    # these cases share their honest networks (hostile/_shared/networks.py, copied beside their model.py)
    # and patch modules at import: their own factories save their weights, in a subprocess
    generated = [c for c in GENERATED if c in dirs]
    for case in generated:
        shutil.copy(HOSTILE / "_shared" / "networks.py", dirs[case] / "networks.py")
    if generated:
        subprocess.run([sys.executable, str(HOSTILE / "_save_weights.py"), *(str(dirs[c]) for c in generated)],
                       check=True, capture_output=True, timeout=600)
    _refused(root, dirs)
    for case in ("forged_result", "result_nested"):
        if case in dirs:
            shutil.copy(HOSTILE / "_shared" / "channel.py", dirs[case] / "channel.py")
    if "process_spawner" in dirs:
        (dirs["process_spawner"] / "marker.txt").write_text(marker)
    if "writes_outside" in dirs:
        (dirs["writes_outside"] / "targets.txt").write_text("\n".join(map(str, targets)))
    return dirs


def _refused(root: Path, dirs: dict[str, Path]) -> None:
    """What the cases the parent must refuse hold besides model.py: links out, a FIFO, large files."""
    if not set(REFUSED) <= set(dirs):
        return
    outside = root / "outside"
    outside.mkdir()
    (outside / "host.yaml").write_text("team: secret-from-host\n")
    (dirs["manifest_link"] / "submission.yaml").symlink_to(outside / "host.yaml")
    with open(outside / "library.so", "wb") as f:
        f.truncate(500 * 2**20)  # sparse: 500 MB that the old parent read into memory to hash
    (dirs["weights_link"] / "weights.pt").symlink_to(outside / "library.so")
    (dirs["huge_manifest"] / "submission.yaml").write_text("team: hostile\n" + ("# padding " * 99 + "\n") * 4000)
    os.mkfifo(dirs["fifo_file"] / "weights.pt")
    with open(dirs["big_files"] / "data.bin", "wb") as f:
        f.truncate(100 * 2**20)  # sparse, over the suite's submission_mb of 64


def _containers() -> list[str]:
    """Worker containers still there (none may outlive the evaluation), where docker runs."""
    if sandbox.docker_problem(sandbox.DEFAULT_IMAGE) is not None:
        return []
    done = subprocess.run(["docker", "ps", "-a", "--filter", f"label={sandbox.LABEL}", "--format", "{{.Names}}"],
                          capture_output=True, text=True, timeout=60)
    return [f"container {name}" for name in done.stdout.split()]


def survivors(marker: str, scratch: Path) -> list[str]:
    """Processes carrying the marker (command line or environment) or running in a scratch folder of `scratch`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = Path(f"/proc/{entry.name}/environ").read_bytes()
        except OSError:
            continue
        if marker in cmdline or marker.encode() in environ or str(scratch) in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def _problem(isolation: str) -> str | None:
    if isolation == "bwrap":
        return sandbox.bwrap_problem()
    return sandbox.docker_problem(sandbox.DEFAULT_IMAGE)


@pytest.fixture(scope="module")
def suites(tmp_path_factory):
    """`suites(isolation)`: the cases of CASES[isolation] evaluated in one `python -m harness evaluate`
    call under that isolation, once per module."""
    done: dict[str, dict] = {}

    def get(isolation: str) -> dict:
        if _problem(isolation) is not None:
            pytest.skip(f"{isolation} unusable here: {_problem(isolation)}")
        if isolation not in done:
            done[isolation] = _run_suite(tmp_path_factory.mktemp(f"hostile-{isolation}"), isolation)
        return done[isolation]

    return get


def _run_suite(tmp: Path, isolation: str) -> dict:
    cases = CASES[isolation]
    marker = f"hostile-{uuid.uuid4().hex[:12]}"
    cache, results, scratch = tmp / "cache", tmp / "results", tmp / "scratch"
    scratch.mkdir()
    targets = [REPO / f"{marker}.txt", Path.home() / f"{marker}.txt", results / f"{marker}.json",
               cache / f"{marker}.labels.npy", tmp / "cases" / "writes_outside" / "PWNED"]
    dirs = prepare(tmp / "cases", marker, targets, cases)
    data = write_folder(tmp / "data", *class_images())
    config = tmp / "rules.yaml"
    config.write_text(yaml.safe_dump({**SUITE_RULES, "isolation": isolation}))
    env = {**os.environ, "HARNESS_CACHE": str(cache), "TMPDIR": str(scratch)}
    argv = [sys.executable, "-m", "harness", "evaluate", *map(str, dirs.values()), "--data", str(data),
            "--results", str(results), "--config", str(config), "--json"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp, timeout=1800)
        left = survivors(marker, scratch) + _containers()
        leaked = [str(t) for t in [*targets, tmp / "cases" / "PWNED-pickle"] if t.exists()]
    finally:
        for target in targets[:2]:
            target.unlink(missing_ok=True)  # should never exist; never leave them behind
    records = json.loads(done.stdout) if done.stdout.strip() else []
    return {"isolation": isolation, "cases": cases, "done": done, "records": dict(zip(cases, records, strict=False)),
            "list": records, "results": results,
            "survivors": left, "leaked": leaked, "scratch": scratch, "dirs": dirs}


def _each(isolations=("bwrap", "docker"), per_case: bool = False) -> list:
    """Parameters (isolation[, case]); docker's are in the release tier."""
    marks = {"bwrap": (), "docker": (pytest.mark.release,)}
    if not per_case:
        return [pytest.param(i, marks=marks[i], id=i) for i in isolations]
    return [pytest.param(i, c, marks=marks[i], id=f"{i}-{c}") for i in isolations for c in CASES[i]]


@pytest.mark.parametrize(("isolation", "case"), _each(per_case=True))
def test_each_case_ends_as_an_honest_record(suites, isolation, case):
    suite = suites(isolation)
    want = EXPECTED[case]
    rec = suite["records"].get(case)
    assert rec is not None, suite["done"].stderr[-3000:]
    assert rec["status"] == want.status and rec["eligible"] == want.eligible, (rec["errors"], rec["reasons"])
    assert rec["eligible"] or rec["reasons"]
    if want.fragment:
        assert any(want.fragment in e for e in rec["errors"] + rec["claim_failures"]), rec["errors"]
    for key, value in want.numbers.items():
        assert rec[key] == value, (key, rec[key], value)
    if want.accuracy_at_most is not None:
        assert rec["accuracy"] <= want.accuracy_at_most
    if want.score_at_least is not None:
        assert rec["score"]["total"] >= want.score_at_least
    for text in rec["errors"] + rec["warnings"] + rec["reasons"] + rec["claim_failures"] + [r["layer"] for r in
                                                                                           rec["layers"]]:
        assert not [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F], text
    if rec["status"] == "ok":  # counts come from the judge: never negative, the receipt adds up
        assert rec["params"] >= 0 and rec["macs"] >= 0 and rec["score"]["total"] >= 0
        assert sum(r["params"] for r in rec["layers"]) == rec["params"]
        assert sum(r["macs"] for r in rec["layers"]) == rec["macs"]
    assert rec["directory"] == str(suite["dirs"][case])
    if case == "writes_outside":  # the repository and home are read-only or absent inside; /tmp is private
        for place in (REPO, Path.home()):  # (a checkout under /tmp is writable inside: the private tmpfs)
            assert str(place).startswith("/tmp/") or str(place) not in rec["errors"][0]
        assert suite["leaked"] == []  # and nothing reached the host


@pytest.mark.parametrize("isolation", _each())
def test_one_call_records_every_case_and_goes_on(suites, isolation):
    suite = suites(isolation)
    done, records = suite["done"], suite["list"]
    assert done.returncode == 3, done.stderr[-3000:]  # the worst status: an error
    assert [Path(r["directory"]).name for r in records] == list(suite["cases"])  # none skipped, in order
    files = sorted(suite["results"].glob("*.json"))
    assert len(files) == len(suite["cases"])  # every record written, none lost, no forged one
    assert sorted(read(f).directory for f in files) == sorted(str(d) for d in suite["dirs"].values())
    ran = [r for r in records if r["status"] != "invalid" or "expected [16, 10]" in r["errors"][0]]
    assert ran and all(r["provenance"]["isolation"] == suite["isolation"] for r in ran)


@pytest.mark.parametrize("isolation", _each())
def test_no_process_outlives_the_evaluation_and_nothing_leaks(suites, isolation):
    suite = suites(isolation)
    assert suite["survivors"] == []
    assert suite["leaked"] == []
    assert list(suite["scratch"].iterdir()) == []  # every scratch folder removed


def test_without_a_sandbox_the_label_thief_finds_the_labels_but_cannot_use_them(tmp_path):
    """Under `none` the thief's factory finds the labels beside the images in the cache. It still
    cannot answer from them: the judge runs only the exported graph, and a lookup in Python does
    not export."""
    import torch

    folder = shutil.copytree(HOSTILE / "label_thief", tmp_path / "label_thief")
    torch.save({}, folder / "weights.pt")
    data = write_folder(tmp_path / "data", *class_images())
    argv = [sys.executable, "-m", "harness", "evaluate", str(folder), "--data", str(data),
            "--results", str(tmp_path / "r"), "--isolation", "none", "--json"]
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    rec = json.loads(done.stdout)
    assert rec["status"] == "invalid" and "does not export with torch.export" in rec["errors"][0], rec["errors"]
    assert "no test labels found" not in rec["errors"][0]  # it did find them
    assert rec["provenance"]["isolation"] == "none"
