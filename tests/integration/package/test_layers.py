"""The layers declared in pyproject.toml (``[tool.importlinter]``) hold for gate, and
``lint-imports`` (run by ``make test``) fails when an upward import is planted in a copy of
the package: inside a function, under ``TYPE_CHECKING``, or between two siblings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from paths import REPO

ROOT = REPO
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gate's package and pyproject.toml, copied so a test can plant an import in them."""
    project = tmp_path_factory.mktemp("layers")
    shutil.copytree(ROOT / "gate", project / "gate",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    return project


def test_gate_keeps_its_layers(copy: Path) -> None:
    result = _lint(copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("module", "planted"), [
    ("config/schema.py", "def _planted() -> None:\n    from gate.engine import run\n"),
    ("providers/base.py", "from typing import TYPE_CHECKING\n"
                          "if TYPE_CHECKING:\n    from gate.simulate.models import MockProvider\n"),
    ("simulate/models.py", "from gate.agent import loop\n"),
    ("project/load.py", "import gate.agent.loop\n"),
    ("providers/chat_wire.py", "def _planted() -> None:\n    from gate.providers import retry\n"),
    ("providers/wire.py", "import tenacity\n"),
    ("providers/guards.py", "from gate.providers.openai_compat import OpenAICompatProvider\n"),
])
def test_a_planted_upward_import_fails_the_contract(copy: Path, module: str,
                                                    planted: str) -> None:
    path = copy / "gate" / module
    original = path.read_text(encoding="utf-8")
    path.write_text(original + "\n\n" + planted, encoding="utf-8")
    try:
        result = _lint(copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode == 1, result.stdout + result.stderr
    importer = "gate." + module.removesuffix(".py").replace("/", ".")
    assert importer in result.stdout
