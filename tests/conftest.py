"""Fixtures more than one tier uses (tests/unit, tests/integration and tests/e2e each have a
conftest for their own): a fresh copy of the repository's gate project per test, the fake
GitHub API of a module's scenario, and the ``slow`` mark of the tests on a project copy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_github import FakeGitHub
from hypothesis import HealthCheck, settings
from paths import copy_project

# CI runs on a busy 2-core machine: no property test may fail for being slow.
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A writable copy of the repository's gate project (config, registry, suite)."""
    return copy_project(tmp_path / "project")


@pytest.fixture
def gh(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
       tmp_path: Path) -> Iterator[FakeGitHub]:
    """The fake GitHub API (tests/support/fake_github.py) on loopback, filled by the requesting
    module's ``github_scenario(fake, monkeypatch, tmp_path)``: its tokens, repositories, pulls
    and the event gate reads. Gate runs in ``tmp_path``, as the Actions workspace."""
    scenario = getattr(request.module, "github_scenario", None)
    assert scenario is not None, f"{request.module.__name__} defines no github_scenario"
    with FakeGitHub() as fake:
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("GATE_COMMENT_AUTHOR", raising=False)
        scenario(fake, monkeypatch, tmp_path)
        yield fake


# fixtures that copy the whole project (tests/e2e/conftest.py: ``regression`` sweeps one)
ON_A_PROJECT_COPY = frozenset({"project_dir", "regression"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on a copy of the whole project runs gate end to end: it is ``slow``, which the
    development loop (``pytest -m "not slow"``) leaves out."""
    for item in items:
        if ON_A_PROJECT_COPY & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
