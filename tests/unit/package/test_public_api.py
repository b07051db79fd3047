"""``__all__`` of each public package equals the public names its ``__init__`` binds, computed
from the source (as httpx's test_exported_members does), not a hand-written list."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from paths import PACKAGE

METADATA = {"__version__"}  # dunders that are public all the same


def public_names(init: Path) -> set[str]:
    """Names an ``__init__.py`` binds at top level, except private ones, ``__future__``
    features and submodules imported only to run them (``from pkg import submodule``)."""
    tree = ast.parse(init.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            for alias in node.names:
                module = (node.module or "").replace(".", "/")
                if (PACKAGE.parent / module / f"{alias.name}.py").exists() or (
                        PACKAGE.parent / module / alias.name / "__init__.py").exists():
                    continue
                names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_") or n in METADATA}


def packages_with_all() -> list[str]:
    out = []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        if "__all__" in init.read_text(encoding="utf-8"):
            out.append(".".join(init.parent.relative_to(PACKAGE.parent).parts))
    return out


def test_gate_and_environments_declare_all() -> None:
    assert {"gate", "gate.environments"} <= set(packages_with_all())


@pytest.mark.parametrize("name", packages_with_all())
def test_all_is_every_public_name(name: str) -> None:
    module = importlib.import_module(name)
    init = PACKAGE.parent.joinpath(*name.split("."), "__init__.py")
    declared = list(module.__all__)
    assert len(declared) == len(set(declared)), "a name listed twice"
    assert set(declared) == public_names(init)
    for attr in declared:
        assert hasattr(module, attr), attr


def test_a_name_left_out_of_all_is_found(tmp_path: Path) -> None:
    init = tmp_path / "__init__.py"
    init.write_text("from __future__ import annotations\nfrom gate.errors import GateError, "
                    "ConfigError\nfrom gate import records\n__version__ = '1'\n_private = 1\n"
                    "def helper() -> None: ...\n__all__ = ['GateError', '__version__']\n")
    assert public_names(init) == {"GateError", "ConfigError", "helper", "__version__"}
