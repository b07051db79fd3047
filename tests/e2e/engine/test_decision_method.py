"""A run records which bets decided it (``decision_method``); a run decided by an earlier
gate's bets is neither re-derived by ``gate verify`` nor resumed with the current ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.cli import main
from gate.engine.decision import DECISION_METHOD

ARMS = ("--candidate", "mock/expert@0.99", "--baseline", "mock/expert")


def sweep(project_dir: Path, out: Path, *extra: str) -> int:
    return main(["sweep", "--config", str(project_dir / "gate.yaml"), *ARMS, "--out", str(out),
                 "--max-rounds", "1", *extra])


def as_an_earlier_gate_wrote_it(run: Path) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["decision_method"] = 1  # the first bets (prior weight 20, one cap)
    (run / "manifest.json").write_text(json.dumps(manifest))


def test_the_manifest_records_the_decision_method(project_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    sweep(project_dir, out)
    assert json.loads((out / "manifest.json").read_text())["decision_method"] == DECISION_METHOD
    assert main(["verify", "--run", str(out)]) == 0


def test_verify_names_an_earlier_method_instead_of_diffing(
        project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    sweep(project_dir, out)
    as_an_earlier_gate_wrote_it(out)
    capsys.readouterr()
    assert main(["verify", "--run", str(out)]) != 0
    said = capsys.readouterr()
    said_all = said.out + said.err
    assert "decision method 1" in said_all
    assert f"method {DECISION_METHOD}" in said_all


def test_resume_refuses_a_run_decided_by_an_earlier_method(
        project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    sweep(project_dir, out)
    as_an_earlier_gate_wrote_it(out)
    capsys.readouterr()
    assert sweep(project_dir, out, "--resume") == 4
    assert "decision_method" in capsys.readouterr().err
