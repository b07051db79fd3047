"""Shared fixtures: a fresh copy of the repository's own gate project per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI runs on a busy 2-core machine: no property test may fail for being slow.
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("gate.yaml", "models.yaml", "prompts", "tools", "tasks", "fixtures")


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A writable copy of the repository's gate project (config, registry, suite)."""
    dest = tmp_path / "project"
    dest.mkdir()
    for name in PROJECT_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    return dest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on a copy of the whole project (``project_dir``) runs gate end to end: it is
    ``slow``, which the development loop (``pytest -m "not slow"``) leaves out."""
    for item in items:
        if "project_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
