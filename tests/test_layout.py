"""The tree tells which code runs in which process, derived from the tree itself:

* the parent (the judge, `harness/judge/`; the board, `harness/board/`; the command line, and
  every ground-floor module they import) never loads torch;
* no stage (`harness/export/`, beside the submission's code; `harness/measure/`) imports the parent,
  and stage 2 never imports stage 1's code;
* nothing in a submission's world (stage 1, the example submissions) imports the judge;
* no module imports its importers."""

from __future__ import annotations

import ast
import subprocess
import sys

from .conftest import REPO

PACKAGE = REPO / "harness"
PARENT_ROOTS = ("harness.judge", "harness.board", "harness.cli", "harness.__main__")
STAGES = ("harness.export", "harness.measure")


def parent() -> list[str]:
    """The parent's modules: the judge's, the board's, the command line's, and all they import."""
    return sorted(m for m in reached(PARENT_ROOTS) if not m.endswith("__main__"))


def reached(roots: tuple[str, ...]) -> set[str]:
    """The harness modules whose names start with one of `roots`, and all they import."""
    graph = imports()
    todo = [m for m in graph if m.startswith(roots)]
    seen = set(todo)
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep in graph and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


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


def test_the_parent_is_derived_from_the_tree_and_never_loads_torch():
    modules = parent()
    assert {"harness.judge.evaluate", "harness.board.render", "harness.data", "harness.record"} <= set(modules)
    assert not [m for m in modules if m.startswith(STAGES)], "the parent imports a stage"
    probe = f"import sys; import {', '.join(modules)}; print('torch' in sys.modules, 'numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


def test_no_stage_imports_the_parent_and_stage_two_never_imports_stage_one():
    graph = imports()
    for name, deps in graph.items():
        if name.startswith(STAGES):
            assert not [d for d in deps if d.startswith(PARENT_ROOTS)], name
        if name.startswith("harness.measure"):
            assert not [d for d in deps if d.startswith("harness.export")], name


def test_nothing_of_a_submissions_world_imports_the_judge():
    """Stage 1 runs beside the submission's code, and the example submissions' own code (their training
    scripts too) is what students copy: neither reaches into the judge, the board or the command line."""
    for path in sorted((REPO / "submissions").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            assert not [n for n in names if n.startswith(PARENT_ROOTS)], path


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
