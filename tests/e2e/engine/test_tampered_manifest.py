"""A run whose manifest.json was changed by hand is invalid input to ``gate verify`` (exit 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.cli import main
from gate.records import (
    Manifest,
    Results,
    read_record,
)


def test_a_run_with_a_tampered_manifest_is_invalid_input(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/expert",
                 "--rounds", "1", "--out", str(out)]) == 0
    assert read_record(out / "manifest.json", Manifest).kind == "run"
    assert read_record(out / "results.json", Results).status == "complete"
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["scope"]["planned_by"] = "someone"
    (out / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["verify", "--run", str(out)]) == 4
    assert "manifest.json: unknown field 'scope.planned_by'" in capsys.readouterr().err
