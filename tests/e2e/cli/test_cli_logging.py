"""``gate`` configures its own logger, not the root one, and replaces its handler when run twice."""

from __future__ import annotations

import logging
from pathlib import Path

from gate.cli import main


def test_cli_configures_the_gate_logger_not_the_root(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level
    assert main(["validate", "--config", str(tmp_path / "missing.yaml")]) == 4
    assert main(["validate", "--config", str(tmp_path / "missing.yaml")]) == 4
    assert (list(root.handlers), root.level) == before
    named = [h for h in logging.getLogger("gate").handlers if h.get_name() == "gate-cli"]
    assert len(named) == 1  # replaced, not stacked, when main() runs twice
