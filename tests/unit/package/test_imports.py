"""The shape of the package: no import cycle between modules, and the engine never imports
the layers above it (commands, cli, report). Read from the source with ``ast``, so an import
inside a function counts as much as one at the top; one under ``if TYPE_CHECKING:`` does not
(it never runs)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from paths import PACKAGE

ABOVE_ENGINE = ("gate.commands", "gate.cli", "gate.report")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _targets(node: ast.AST, module: str, is_package: bool, modules: set[str]) -> Iterator[str]:
    """What an import statement imports: ``from a import b`` is module ``a.b`` when there is
    one, else a name in ``a``."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            here = module.split(".") if is_package else module.split(".")[:-1]
            anchor = here[: len(here) - node.level + 1]
            base = ".".join(anchor + ([node.module] if node.module else []))
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            yield sub if sub in modules else base


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except those under ``if TYPE_CHECKING:`` (never imported at run time)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield child
                yield from _runtime_nodes(child)
            continue
        yield node
        yield from _runtime_nodes(node)


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the modules of the package it imports at run time (anywhere in its source)."""
    modules = package_modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = {target for node in _runtime_nodes(tree)
                       for target in _targets(node, name, path.name == "__init__.py",
                                              set(modules))
                       if target in modules and target != name}
    return graph


def _direct(path: Path) -> set[str]:
    """Modules named in ``import x`` and ``from x import ...`` statements."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_modules() -> None:
    cycle = find_cycle(import_graph(PACKAGE))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_engine_never_imports_commands_cli_or_report() -> None:
    graph = import_graph(PACKAGE)
    bad = sorted((mod, dep) for mod, deps in graph.items() if mod.startswith("gate.engine")
                 for dep in deps if dep.startswith(ABOVE_ENGINE))
    assert bad == [], bad


def test_the_engine_parses_no_arguments() -> None:
    users = sorted(mod for mod, path in package_modules(PACKAGE).items()
                   if mod.startswith("gate.engine") and "argparse" in _direct(path))
    assert users == []


def test_a_planted_cycle_and_a_planted_upward_import_are_found(tmp_path: Path) -> None:
    root = tmp_path / "gate"
    (root / "engine").mkdir(parents=True)
    for rel in ("__init__.py", "engine/__init__.py", "report.py"):
        (root / rel).write_text("")
    (root / "engine" / "a.py").write_text("from gate.engine import b\n")
    (root / "engine" / "b.py").write_text("def f():\n    from gate.engine.a import g\n")
    (root / "engine" / "c.py").write_text("from gate.report import render\n")
    (root / "engine" / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gate.engine.a import h\n")
    graph = import_graph(root)
    assert find_cycle(graph) == ["gate.engine.a", "gate.engine.b", "gate.engine.a"]
    assert "gate.report" in graph["gate.engine.c"]
    assert graph["gate.engine.d"] == set()


@pytest.mark.parametrize(("source", "expected"), [
    ("from . import b\n", {"gate.engine.b"}),
    ("from .b import x\n", {"gate.engine.b"}),
    ("from ..report import y\n", {"gate.report"}),
])
def test_relative_imports_resolve(tmp_path: Path, source: str, expected: set[str]) -> None:
    root = tmp_path / "gate"
    (root / "engine").mkdir(parents=True)
    for rel in ("__init__.py", "engine/__init__.py", "engine/b.py", "report.py"):
        (root / rel).write_text("")
    (root / "engine" / "a.py").write_text(source)
    assert import_graph(root)["gate.engine.a"] == expected
