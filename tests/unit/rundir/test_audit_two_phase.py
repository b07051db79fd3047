"""Audit before send: every request leaves a ``started`` line first; a start without outcome
(gate killed in between) is an ``interrupted`` attempt, counted like any provider error (the
kill -9s against a loopback provider: tests/e2e/engine/test_audit_kill_9.py)."""

from __future__ import annotations

import json
from pathlib import Path

from builders import trial
from paths import REPO

from gate.engine.results import arm_summary
from gate.records import ArmSpec
from gate.rundir.audit import INTERRUPTED_MESSAGE, attempts, read_audit


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
    summary = arm_summary(ArmSpec(name="candidate", model="m", provider="mock",
                                  prompts_tools="worktree"), [trial("candidate", "t")], audit)
    assert summary.provider_errors.by_kind == {"interrupted": 1}
    assert summary.provider_errors.total == 1
    assert summary.attempts == 2
    assert summary.successes == 1
    assert summary.trials == 1


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
