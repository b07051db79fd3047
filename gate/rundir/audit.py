"""audit.jsonl, two-phase: a ``started`` line before each request leaves, an outcome line after.

    {"phase": "started", "attempt_id": ID, ts, arm, model, task, round, step, attempt,
     request_sha256}                                    written before the body is sent
    {"attempt_id": ID, ..., "outcome": "ok" | kind, ...} written when the attempt ends

``attempts(lines)`` folds them into one record per attempt, i.e. per request started: an
outcome line stands for its attempt; a ``started`` line with no outcome (gate was killed or
crashed in between) becomes an ``interrupted`` attempt, a provider-error kind, which costs
nothing we can compute (the provider may still have billed it). Outcome lines with no id, or
whose start was not recorded (a transport that cannot announce it), count as they are.
results.json, ``gate verify`` and the budget on ``--resume`` all count through this function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gate.errors import ErrorKind
from gate.records import AuditAttempt, AuditLine, AuditStarted, parse_record
from gate.rundir.jsonl import read_lines

STARTED = "started"
INTERRUPTED_MESSAGE = ("interrupted: gate stopped between sending the request and recording its "
                       "outcome; the provider may have answered and billed it")


def attempts(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per attempt, in the order the attempts started."""
    order: list[str | int] = []
    by_key: dict[str | int, dict[str, Any]] = {}
    for number, line in enumerate(lines):
        attempt_id = line.get("attempt_id") or ""
        key: str | int = attempt_id or number
        if line.get("phase") == STARTED:
            if key not in by_key:
                order.append(key)
                by_key[key] = interrupted(line)
            continue
        if key not in by_key:
            order.append(key)
        by_key[key] = line
    return [by_key[k] for k in order]


def interrupted(started: dict[str, Any]) -> dict[str, Any]:
    """The record of an attempt whose outcome was never written."""
    record = {k: v for k, v in started.items() if k != "phase"}
    record.update(outcome=ErrorKind.INTERRUPTED.value, http_status=None, response_id=None,
                  tokens_in=0, tokens_out=0, cost_reported_usd=None, cost_computed_usd=0.0,
                  latency_s=0.0, error=INTERRUPTED_MESSAGE)
    return record


def read_audit_lines(path: Path) -> list[AuditLine]:
    """audit.jsonl's lines as written, each validated by its shape (``AuditStarted`` or
    ``AuditAttempt``)."""
    lines: list[AuditLine] = []
    for number, obj in read_lines(path):
        model = AuditStarted if obj.get("phase") == STARTED else AuditAttempt
        lines.append(parse_record(model, obj, str(path), number))
    return lines


def read_audit(path: Path) -> list[AuditAttempt]:
    """audit.jsonl as one validated ``AuditAttempt`` per attempt (``started`` lines folded;
    a start without an outcome is ``interrupted``). Every line is validated by its shape."""
    lines = [line.to_json() for line in read_audit_lines(path)]
    return [AuditAttempt.model_validate(a) for a in attempts(lines)]
