"""One production session, whatever file it came from: OpenAI chat messages (with tool calls
and tool results), the tool definitions when the trace carries them, and what the team knows
about it (label, score, latency, cost, start time). ``episode`` reads the calls out of it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gate.errors import Problem

TOOL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")  # gate's tool-name rule (ToolDef)


@dataclass
class Session:
    id: str
    where: tuple[str, int]  # file and line it starts on, for messages
    messages: list[dict[str, Any]]  # OpenAI chat format
    tools: list[dict[str, Any]] | None = None  # OpenAI tool definitions, when recorded
    label: str | None = None  # "good" | "bad" | None
    score: float | None = None
    started_at: datetime | None = None
    latency_s: float | None = None
    cost_usd: float | None = None


@dataclass(frozen=True)
class Call:
    """A tool call the agent made and what came back (``error``: the result was an error)."""

    tool: str
    args: dict[str, Any]
    result: Any = None
    error: str | None = None


@dataclass
class Episode:
    """What a task is made of: the first user message, the calls in order, the final text."""

    session: Session
    instruction: str
    system: str | None
    calls: list[Call] = field(default_factory=list)
    steps: int = 0  # assistant turns
    final: str = ""


def text_of(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content
                       if isinstance(p, dict) and p.get("type") in ("text", "input_text"))
    return "" if content is None else str(content)


def _result(content: Any) -> tuple[Any, str | None]:
    text = text_of(content) if not isinstance(content, dict | list) else None
    value: Any = content
    if text is not None:
        try:
            value = json.loads(text)
        except ValueError:
            value = text
    if isinstance(value, dict) and set(value) == {"error"}:
        return None, str(value["error"])
    return value, None


def _arguments(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def episode(session: Session) -> tuple[Episode | None, Problem | None]:
    """The session's calls paired with their results (by ``tool_call_id``); a problem naming
    the session's file and line instead when it cannot be replayed."""
    try:
        return _episode(session)
    except (AttributeError, TypeError, KeyError, ValueError) as exc:  # messages of odd shapes
        path, line = session.where
        return None, Problem(path, line, f"session {session.id}: malformed messages "
                             f"({type(exc).__name__}); skipped")


def _episode(session: Session) -> tuple[Episode | None, Problem | None]:
    path, line = session.where
    msgs = session.messages
    first_user = next((m for m in msgs if m.get("role") == "user"), None)
    instruction = text_of(first_user.get("content")).strip() if first_user else ""
    if not instruction:
        return None, Problem(path, line, f"session {session.id}: no user message; skipped")
    system = next((text_of(m.get("content")) for m in msgs if m.get("role") == "system"), None)
    ep = Episode(session, instruction, system)
    pending: dict[str, tuple[str, dict[str, Any]]] = {}
    order: list[str] = []
    results: dict[str, tuple[Any, str | None]] = {}
    for m in msgs:
        role = m.get("role")
        if role == "assistant":
            ep.steps += 1
            calls = m.get("tool_calls") or []
            if not calls and text_of(m.get("content")).strip():
                ep.final = text_of(m.get("content")).strip()
            for i, tc in enumerate(calls):
                fn = tc.get("function") or {}
                args = _arguments(fn.get("arguments"))
                name = str(fn.get("name") or "")
                if args is None or not name:
                    return None, Problem(path, line, f"session {session.id}: a tool call "
                                         "without a name or with unparseable arguments; skipped")
                if not TOOL_NAME.match(name):
                    return None, Problem(path, line, f"session {session.id}: tool name "
                                         f"{name[:64]!r} is not a valid tool name "
                                         f"({TOOL_NAME.pattern}); skipped")
                call_id = str(tc.get("id") or f"{ep.steps}.{i}")
                pending[call_id] = (name, args)
                order.append(call_id)
        elif role == "tool":
            results[str(m.get("tool_call_id") or "")] = _result(m.get("content"))
    for call_id in order:
        name, args = pending[call_id]
        if call_id not in results:
            return None, Problem(path, line, f"session {session.id}: the result of call "
                                 f"{call_id} ({name}) was not recorded; skipped")
        value, error = results[call_id]
        ep.calls.append(Call(name, args, value, error))
    if not ep.calls:
        return None, Problem(path, line, f"session {session.id}: no tool calls, nothing to "
                             "replay; skipped")
    return ep, None
