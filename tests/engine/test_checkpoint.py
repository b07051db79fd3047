"""The checkpoint: crash-safe JSONL, and kill -9 followed by --resume."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gate.engine.jsonl import JsonlWriter, read_jsonl
from gate.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_torn_last_line_is_dropped_and_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    with JsonlWriter(path) as w:
        w.write({"trial_id": "a"})
        w.write({"trial_id": "b"})
    with path.open("a") as fh:
        fh.write('{"trial_id": "c", "succ')  # a crash in the middle of a write
    assert [r["trial_id"] for r in read_jsonl(path)] == ["a", "b"]
    with JsonlWriter(path) as w:
        w.write({"trial_id": "c"})
    assert [r["trial_id"] for r in read_jsonl(path)] == ["a", "b", "c"]


def test_corruption_in_the_middle_is_an_error_not_a_skip(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    path.write_text('{"trial_id": "a"}\nnot json\n{"trial_id": "b"}\n')
    with pytest.raises(ConfigError) as err:
        read_jsonl(path)
    assert err.value.problems[0].line == 2


def test_kill_and_resume_equals_an_uninterrupted_sweep(project_dir: Path) -> None:
    """Three random kill -9 points (bench/kill_resume.py runs twenty)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "kill_resume.py"), "--cycles", "3",
         "--config", str(project_dir / "gate.yaml")],
        capture_output=True, text=True, timeout=240, cwd=project_dir,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 of 3 cycles equal" in proc.stdout
