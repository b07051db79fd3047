"""Small helpers of the tests that run gate's CLI or git (not a test module)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gate.cli import main

# git with a fixed identity and none of the machine's configuration
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    """``git -C repo ARGS``; its output, stripped. Fails the test when git does."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env={**os.environ, **GIT_ENV}).stdout.strip()


def validate(capsys: pytest.CaptureFixture[str], project: Path) -> tuple[int, str]:
    """``gate validate`` on ``project``: its exit code and what it wrote to stderr."""
    code = main(["validate", "--config", str(project / "gate.yaml")])
    return code, capsys.readouterr().err


def results_of(out: Path) -> dict[str, Any]:
    """A run's results.json, or its PARTIAL-RESULTS.json when it did not finish."""
    name = "results.json" if (out / "results.json").exists() else "PARTIAL-RESULTS.json"
    data: dict[str, Any] = json.loads((out / name).read_text())
    return data
