"""Audit before send: every request leaves a ``started`` line first; a start without outcome
(gate killed in between) is an ``interrupted`` attempt, counted like any provider error; and
after kill -9s the audit never counts fewer attempts than the requests a loopback provider
logged, and at most the ``interrupted`` ones more."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from paths import REPO

from gate.engine.results import arm_summary
from gate.records import ArmSpec, Trial
from gate.rundir.audit import INTERRUPTED_MESSAGE, attempts, read_audit

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it



def started(attempt_id: str, arm: str = "candidate") -> dict[str, object]:
    return {"phase": "started", "attempt_id": attempt_id, "arm": arm, "task": "t", "round": 1,
            "step": 0, "attempt": 1, "request_sha256": "s"}


def outcome(attempt_id: str, kind: str = "ok", rid: str | None = "gen-1") -> dict[str, object]:
    return {"attempt_id": attempt_id, "arm": "candidate", "task": "t", "round": 1, "step": 0,
            "attempt": 1, "request_sha256": "s", "outcome": kind, "response_id": rid,
            "cost_computed_usd": 0.5, "http_status": 200}


def test_fold_one_record_per_request_started() -> None:
    lines = [started("a"), started("b"), outcome("a"), started("c"),
             outcome("c", "server_error", None), {"outcome": "ok", "arm": "candidate"}]
    folded = attempts(lines)
    assert [a["outcome"] for a in folded] == ["ok", "interrupted", "server_error", "ok"]
    gone = folded[1]
    assert gone["attempt_id"] == "b"
    assert gone["cost_computed_usd"] == 0.0
    assert gone["error"] == INTERRUPTED_MESSAGE
    assert "phase" not in gone


def test_interrupted_counts_as_a_provider_error_not_a_model_failure(tmp_path: Path) -> None:
    common = {"ts": "2026-11-23T00:00:00.000Z", "model": "m"}
    done = {**outcome("a"), **common, "tokens_in": 1, "tokens_out": 1,
            "cost_reported_usd": None, "latency_s": 0.1, "error": None, "extra": {},
            "finish_reason": "stop", "cached_tokens": 0, "reused_from": None}
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in (
        {**started("a"), **common}, done, {**started("b"), **common})))
    audit = read_audit(path)
    trial = Trial.model_validate({
        "trial_id": "candidate/t/r1", "arm": "candidate", "model": "m", "task": "t",
        "round": 1, "seed": 1, "ts": common["ts"], "wall_s": 1.0, "status": "scored",
        "success": True, "reward": 1.0, "latency_s": 1.0, "trace_id": "0" * 32})
    summary = arm_summary(ArmSpec(name="candidate", model="m", provider="mock",
                                  prompts_tools="worktree"), [trial], audit)
    assert summary.provider_errors.by_kind == {"interrupted": 1}
    assert summary.provider_errors.total == 1
    assert summary.attempts == 2
    assert summary.successes == 1
    assert summary.trials == 1


def test_kill_9_three_times_audit_bounds_provider_requests() -> None:
    """bench/kill_audit.py with three kills (the bench runs twenty)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "kill_audit.py"), "--kills", "3",
         "--max-rounds", "1"],
        capture_output=True, text=True, timeout=500, cwd=REPO,
    )
    # the started line is written right before the request is handed to the transport: a kill
    # in between audits one request more (interrupted), never one less (docs/security.md)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bounds = re.search(r"0 <= audited - received <= interrupted: (\w+) \(audited (\d+), "
                       r"received (\d+), interrupted (\d+)\)", proc.stdout)
    assert bounds is not None, proc.stdout
    audited, received, interrupted = (int(bounds.group(i)) for i in (2, 3, 4))
    assert received > 0
    assert 0 <= audited - received <= interrupted, proc.stdout
    assert bounds.group(1) == "True"
    assert "requests the audit missed: 0;" in proc.stdout
    assert "kills: 3 of 3" in proc.stdout


def test_results_schema_names_every_provider_error_kind() -> None:
    """The published schema accepts every kind results.json can count (interrupted too)."""
    from gate.providers.base import ErrorKind

    schema = json.loads((REPO / "gate/schemas/results.schema.json").read_text())
    found: list[list[str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "by_kind" in node and isinstance(node["by_kind"], dict):
                names = node["by_kind"]["propertyNames"]
                if "$ref" in names:
                    names = schema["$defs"][names["$ref"].rsplit("/", 1)[1]]
                found.append(names["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert found
    for kinds in found:
        assert set(kinds) == {k.value for k in ErrorKind}
