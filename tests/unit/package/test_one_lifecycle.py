"""The run lifecycle is written once (gate/engine/session.py, docs/design.md "The run session"):
one ``asyncio.run`` and one opening of the providers in the whole package; no module reaches
into another's private names; the shard path is typed. Read from the source with ``ast``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from paths import PACKAGE

SESSION = PACKAGE / "engine" / "session.py"


def _trees() -> Iterator[tuple[Path, ast.AST]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _calls(name: str) -> list[str]:
    """``file:line`` of every call whose callee is spelled ``name`` (``asyncio.run``)."""
    found = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == name:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_asyncio_run_once_in_the_process_loop() -> None:
    """The one event loop, gate.engine.loop's: light to import, so that gate smoke starts its
    programs in it before the engine is imported."""
    loop = PACKAGE / "engine" / "loop.py"
    assert _calls("asyncio.run") == [f"gate/engine/loop.py:{_line('asyncio.run(', loop)}"]


def test_the_providers_are_opened_once_in_the_run_session() -> None:
    assert _calls("open_providers") == [f"gate/engine/session.py:{_line('open_providers(')}"]


def _line(text: str, path: Path = SESSION) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if text in line and "def " not in line)


def test_no_module_imports_a_private_name_of_another() -> None:
    """``from gate.x import _y``, ``from gate._x import y`` and ``import gate._x`` are refused
    (a module's own private names are its business)."""
    found = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gate"):
                parts = (node.module or "").split(".")
                names = [a.name for a in node.names]
                if any(_private(p) for p in parts) or any(_private(n) for n in names):
                    found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("gate") and any(
                            _private(p) for p in alias.name.split(".")):
                        found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert found == []


def test_the_shard_path_has_no_any() -> None:
    for name in ("shard.py", "session.py", "sweep.py", "run.py"):
        tree = ast.parse((PACKAGE / "engine" / name).read_text(encoding="utf-8"))
        spelled = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert "Any" not in spelled, name
