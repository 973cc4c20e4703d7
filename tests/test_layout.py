"""The tree tells which code runs in which process: the parent never loads torch, stage 2 never
imports stage 1's code (which runs beside the submission's), and no module imports its importers."""

from __future__ import annotations

import ast
import subprocess
import sys

from .conftest import REPO

PACKAGE = REPO / "harness"
PARENT = ["harness.cli", "harness.judge.evaluate", "harness.judge.runner", "harness.judge.sandbox",
          "harness.judge.data", "harness.judge.report", "harness.board.ranking", "harness.board.tables",
          "harness.board.render", "harness.jobs", "harness.manifest", "harness.config", "harness.record",
          "harness.score", "harness.errors", "harness.schema"]


def imports() -> dict[str, set[str]]:
    """harness module -> the harness modules it imports (at the top or inside functions)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(REPO).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = name if rel.name == "__init__" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                found |= {f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else target for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("harness")}
        graph[name] = {m for m in found if m != name and m != package}
    return graph


def _is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_importing_the_parent_leaves_torch_unloaded():
    probe = f"import sys; import {', '.join(PARENT)}; print('torch' in sys.modules, 'numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


def test_stage_two_never_imports_the_code_that_runs_beside_submissions():
    graph = imports()
    for name, deps in graph.items():
        if name.startswith("harness.measure"):
            assert not [d for d in deps if d.startswith("harness.build")], name
        if name.startswith(("harness.judge", "harness.board")):  # the parent starts the stages, never imports them
            assert not [d for d in deps if d.startswith(("harness.build", "harness.measure"))], name


def test_no_import_cycles():
    graph = imports()
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        for dep in sorted(graph.get(name, ())):
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep in graph and len(path) < 20:
                visit(dep, path + [dep])

    for name in sorted(graph):
        visit(name, [name])
    assert cycles == []
    assert "harness.judge.evaluate" in graph and "harness.jobs" in graph["harness.judge.evaluate"]  # it sees imports
