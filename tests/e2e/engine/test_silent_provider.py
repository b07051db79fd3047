"""A provider that stops answering: after ``retry.max_consecutive_timeouts`` timeouts in a row
the circuit breaker halts the sweep (exit 2, PARTIAL-RESULTS.json), instead of retrying every
call to the end. Counts only: no assertion on how long anything took."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gate.cli import main
from gate.rundir.audit import attempts
from gate.rundir.jsonl import read_jsonl


def silent_project(project: Path, log: Path, limit: int) -> None:
    config = project / "gate.yaml"
    data: dict[str, Any] = yaml.safe_load(config.read_text())
    mock = data["providers"]["mock"]
    mock["timeout_s"] = 0.2  # the server stalls 1.2 s; the client gives up at 0.2 s
    mock["concurrency"] = 1
    mock["retry"]["max_consecutive_timeouts"] = limit
    mock["faults"] = {"rate": 1.0, "kinds": ["stall"], "log": str(log)}
    data["run"]["concurrency"] = 1
    config.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("limit", [3, 4])
def test_consecutive_timeouts_halt_the_sweep(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: int
) -> None:
    log = tmp_path / "server.jsonl"
    silent_project(project_dir, log, limit)
    out = tmp_path / "run"
    code = main(["sweep", "--config", str(project_dir / "gate.yaml"), "--out", str(out),
                 "--candidate", "mock/expert@0.95", "--baseline", "mock/expert",
                 "--max-rounds", "2", "--seed", "3"])
    err = capsys.readouterr().err
    assert code == 2
    halt_line = next(x for x in err.splitlines() if x.startswith("[CIRCUIT BREAKER]"))
    assert f"{limit} consecutive timeouts" in halt_line
    assert ", round 1" in halt_line
    assert " at task " in halt_line
    received = [e for e in read_jsonl(log) if e["event"] == "request"]
    audit = attempts(read_jsonl(out / "audit.jsonl"))
    assert len(received) == limit  # concurrency 1: exactly the streak, then nothing more
    assert len(audit) == limit
    assert {a["outcome"] for a in audit} == {"timeout"}
    partial = json.loads((out / "PARTIAL-RESULTS.json").read_text())
    assert partial["status"] == "halted"
    assert "consecutive timeouts" in partial["halt"]["reason"]
    assert not (out / "results.json").exists()
