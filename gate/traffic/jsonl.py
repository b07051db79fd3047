"""The plain JSONL session format (docs/traffic.md): one session per line, for teams without
OpenTelemetry.

    {"id": "s-1", "started_at": "2026-11-02T10:00:00Z",
     "messages": [OpenAI chat messages: system, user, assistant with tool_calls, tool, ...],
     "tools": [optional OpenAI tool definitions], "label": "good", "score": 0.9,
     "latency_s": 4.2, "cost_usd": 0.0031}

Only ``messages`` is required. A line that is not JSON, not such an object, or carries an
unknown key is reported with its file and line and skipped.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gate.errors import Problem
from gate.traffic.session import Session


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    started_at: datetime | None = None
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    label: Literal["good", "bad"] | None = None
    score: float | None = None
    latency_s: float | None = Field(None, ge=0)
    cost_usd: float | None = Field(None, ge=0)


def read_jsonl_sessions(path: Path, shown: str) -> tuple[list[Session], list[Problem]]:
    sessions: list[Session] = []
    problems: list[Problem] = []
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            got = _parse(raw, shown, number)
            if isinstance(got, Problem):
                problems.append(got)
            else:
                sessions.append(got)
    return sessions, problems


def _parse(raw: str, shown: str, number: int) -> Session | Problem:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:  # a truncated or garbled line; never echo its text
        return Problem(shown, number, f"not JSON ({exc.msg} at column {exc.colno}); skipped")
    try:
        line = _Line.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "line" for e in exc.errors()})
        return Problem(shown, number, f"not a session: bad or unknown field(s) "
                       f"{', '.join(fields)}; skipped")
    started = line.started_at
    if started is not None and started.tzinfo is None:
        return Problem(shown, number, "started_at has no time zone; skipped")
    return Session(id=line.id or f"line-{number}", where=(shown, number),
                   messages=line.messages, tools=line.tools, label=line.label,
                   score=line.score, started_at=started, latency_s=line.latency_s,
                   cost_usd=line.cost_usd)
