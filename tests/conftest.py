"""Fixtures every tier shares (tests/unit, tests/integration, tests/e2e each have their own
conftest for the rest): a fresh copy of the repository's own gate project per test, and the
``slow`` mark of the tests that use one."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from paths import copy_project

# CI runs on a busy 2-core machine: no property test may fail for being slow.
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A writable copy of the repository's gate project (config, registry, suite)."""
    return copy_project(tmp_path / "project")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on a copy of the whole project (``project_dir``) runs gate end to end: it is
    ``slow``, which the development loop (``pytest -m "not slow"``) leaves out."""
    for item in items:
        if "project_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
