"""kill -9 during a sweep followed by --resume equals an uninterrupted sweep (the crash-safe JSONL
itself: tests/unit/rundir/test_checkpoint.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from paths import REPO


def test_kill_and_resume_equals_an_uninterrupted_sweep(project_dir: Path) -> None:
    """Three random kill -9 points (bench/kill_resume.py runs twenty)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "kill_resume.py"), "--cycles", "3",
         "--config", str(project_dir / "gate.yaml")],
        capture_output=True, text=True, timeout=240, cwd=project_dir,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 of 3 cycles equal" in proc.stdout
