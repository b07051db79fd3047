"""Where things are, for every tier: the repository, the package, the vendored payloads, and a
writable copy of the repository's own gate project (not a test module)."""

from __future__ import annotations

import shutil
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parents[1]
PACKAGE = REPO / "gate"
WEBHOOKS = REPO / "tests" / "fixtures" / "webhooks"
PROGRAMS = SUPPORT / "programs"  # agent programs the tests run as child processes
FRAMEWORKS = SUPPORT / "frameworks"  # real agent frameworks' programs (tests/e2e/agent)
PROJECT_FILES = ("gate.yaml", "models.yaml", "prompts", "tools", "tasks", "fixtures")


def copy_project(dest: Path) -> Path:
    """A writable copy of the repository's gate project (config, registry, suite) at ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    return dest
