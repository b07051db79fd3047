"""Fixtures of the end-to-end tier (gate's CLI on a whole project)."""

from __future__ import annotations

from pathlib import Path

import pytest
from comment_cases import demo_regression


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's regression sweep (mock/expert@0.8 against mock/expert on the repository's
    suite, exit 1), run once per module: the run directory, to read and not to change."""
    return demo_regression(tmp_path_factory.mktemp("demo"))
