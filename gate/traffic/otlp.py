"""OTLP/JSON traces as the OpenTelemetry Collector's file exporter writes them: one
``{"resourceSpans": [...]}`` object per line (ids in hex or base64, 64-bit numbers as strings
or numbers: both encodings are read).

A session is one trace. It is rebuilt from the chat spans' captured messages alone, GenAI
semantic conventions: ``gen_ai.input.messages`` and ``gen_ai.output.messages`` (JSON lists of
``{"role", "parts": [{"type": "text" | "tool_call" | "tool_call_response", ...}]}``),
``gen_ai.system_instructions``, and ``gen_ai.tool.definitions`` when recorded. Tool calls and
their results appear in the next request's messages, so the last chat span of a trace holds
the whole conversation. ``execute_tool`` spans are used when present (a result missing from
the messages is taken from ``gen_ai.tool.call.result``), never required. A
``gen_ai.evaluation.result`` event (or those attributes on a span) labels the session.

Problems (a line that is not JSON, a trace whose chat spans carry no messages, an attribute
value of an unknown kind) are reported with file and line, and the line or trace skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gate.errors import Problem
from gate.traffic.session import Session

CHAT_OPERATIONS = ("chat", "text_completion", "generate_content")
GOOD_LABELS = ("good", "pass", "passed", "success", "correct")
BAD_LABELS = ("bad", "fail", "failed", "failure", "incorrect")


@dataclass
class _Span:
    line: int
    name: str
    start: int
    end: int
    attrs: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]


@dataclass
class _Trace:
    line: int
    spans: list[_Span] = field(default_factory=list)


class _Bad(ValueError):
    pass


class _Unknown(_Bad):
    """An attribute value of a kind this reader does not know: the attribute is dropped."""


def _value(v: Any) -> Any:
    if not isinstance(v, dict) or len(v) != 1:
        raise _Bad("an attribute value is not an AnyValue")
    kind, raw = next(iter(v.items()))
    if kind in ("stringValue", "boolValue", "bytesValue"):
        return raw
    if kind == "intValue":
        return int(raw)
    if kind == "doubleValue":
        return float(raw)
    if kind == "arrayValue":
        return [_value(x) for x in (raw or {}).get("values", [])]
    if kind == "kvlistValue":
        return _attrs((raw or {}).get("values", []), [])
    raise _Unknown(f"unknown attribute value kind {kind!r}")


def _attrs(items: Any, dropped: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if not isinstance(item, dict) or "key" not in item:
            raise _Bad("an attribute without a key")
        try:
            out[str(item["key"])] = _value(item.get("value", {"stringValue": ""}))
        except _Unknown as exc:
            dropped.append(f"attribute {str(item['key'])[:80]!r}: {exc}")
    return out


def _spans_of(record: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(record, dict) or not isinstance(record.get("resourceSpans"), list):
        raise _Bad("not an OTLP traces record (no resourceSpans list)")
    out = []
    for rs in record["resourceSpans"]:
        for ss in (rs or {}).get("scopeSpans") or []:
            for span in (ss or {}).get("spans") or []:
                if not isinstance(span, dict) or not span.get("traceId"):
                    raise _Bad("a span without a traceId")
                out.append((str(span["traceId"]), span))
    return out


def _span(span: dict[str, Any], line: int, dropped: list[str]) -> _Span:
    events = [(str(e.get("name", "")), _attrs(e.get("attributes"), dropped))
              for e in span.get("events") or [] if isinstance(e, dict)]
    return _Span(line, str(span.get("name", "")), int(span.get("startTimeUnixNano") or 0),
                 int(span.get("endTimeUnixNano") or 0), _attrs(span.get("attributes"), dropped),
                 events)


def read_otlp_sessions(path: Path, shown: str) -> tuple[list[Session], list[Problem]]:
    traces: dict[str, _Trace] = {}
    problems: list[Problem] = []
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            dropped: list[str] = []
            try:
                spans = [(tid, _span(s, number, dropped))
                         for tid, s in _spans_of(json.loads(raw))]
            except json.JSONDecodeError as exc:
                problems.append(Problem(shown, number, f"not JSON ({exc.msg} at column "
                                        f"{exc.colno}); line skipped"))
                continue
            except (_Bad, ValueError, TypeError, AttributeError) as exc:
                problems.append(Problem(shown, number, f"{_short(exc)}; line skipped"))
                continue
            problems.extend(Problem(shown, number, f"{d}; attribute skipped") for d in dropped)
            for tid, span in spans:
                traces.setdefault(tid, _Trace(number)).spans.append(span)
    sessions = []
    for tid, trace in traces.items():
        got = _session(tid, trace, shown)
        if isinstance(got, Problem):
            problems.append(got)
        else:
            sessions.append(got)
    return sessions, problems


def _short(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, _Bad) else f"malformed span ({type(exc).__name__})"
    return text[:200]


def _is_chat(span: _Span) -> bool:
    op = span.attrs.get("gen_ai.operation.name")
    return op in CHAT_OPERATIONS or (op is None and span.name.split(" ")[0] in CHAT_OPERATIONS)


def _json_list(span: _Span, key: str) -> list[Any] | None:
    raw = span.attrs.get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        raise _Bad(f"{key} is not JSON") from None
    if not isinstance(value, list):
        raise _Bad(f"{key} is not a JSON list")
    return value


def _session(trace_id: str, trace: _Trace, shown: str) -> Session | Problem:
    chats = sorted((s for s in trace.spans if _is_chat(s)), key=lambda s: (s.start, s.line))
    with_messages = [s for s in chats if "gen_ai.input.messages" in s.attrs]
    short = trace_id[:16]
    if not with_messages:
        why = "no chat span" if not chats else "its chat spans carry no captured messages " \
              "(gen_ai.input.messages: turn content capture on)"
        return Problem(shown, trace.line, f"trace {short}: {why}; skipped")
    last = with_messages[-1]
    try:
        messages = _conversation(last)
        tools = _json_list(last, "gen_ai.tool.definitions")
    except (_Bad, ValueError, TypeError, AttributeError, KeyError) as exc:
        return Problem(shown, last.line, f"trace {short}: {_short(exc)} (span "
                       f"{last.name[:80]!r}); skipped")
    _fill_tool_results(messages, trace.spans)
    label, score = _label(trace.spans)
    start = min(s.start for s in trace.spans)
    end = max(s.end for s in trace.spans)
    costs = [float(s.attrs["gen_ai.usage.cost"]) for s in chats if "gen_ai.usage.cost" in s.attrs]
    return Session(
        id=trace_id, where=(shown, trace.line), messages=messages,
        tools=[t for t in tools if isinstance(t, dict)] if tools else None,
        label=label, score=score,
        started_at=datetime.fromtimestamp(start / 1e9, UTC) if start else None,
        latency_s=(end - start) / 1e9 if end > start else None,
        cost_usd=sum(costs) if costs else None)


def _conversation(span: _Span) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = _json_list(span, "gen_ai.system_instructions")
    if system:
        out.append({"role": "system", "content": _texts(system)})
    for message in (_json_list(span, "gen_ai.input.messages") or []) + (
            _json_list(span, "gen_ai.output.messages") or []):
        out.extend(_openai(message))
    return out


def _texts(parts: list[Any]) -> str:
    return "".join(str(p.get("content", "")) for p in parts
                   if isinstance(p, dict) and p.get("type") == "text")


def _openai(message: Any) -> list[dict[str, Any]]:
    """One semantic-conventions message as OpenAI chat messages (tool results: one each)."""
    if not isinstance(message, dict):
        raise _Bad("a message is not an object")
    role = str(message.get("role", ""))
    parts = [p for p in message.get("parts") or [] if isinstance(p, dict)]
    responses = [p for p in parts if p.get("type") == "tool_call_response"]
    if responses:
        return [{"role": "tool", "tool_call_id": str(p.get("id") or ""),
                 "content": _content(p.get("response", p.get("result")))} for p in responses]
    calls = [{"id": str(p.get("id") or ""), "type": "function",
              "function": {"name": str(p.get("name") or ""),
                           "arguments": _arguments(p.get("arguments"))}}
             for p in parts if p.get("type") == "tool_call"]
    out: dict[str, Any] = {"role": role, "content": _texts(parts) or None}
    if calls:
        out["tool_calls"] = calls
    return [out]


def _content(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value if value is not None else {})


def _fill_tool_results(messages: list[dict[str, Any]], spans: list[_Span]) -> None:
    """Results the messages lack, from ``execute_tool`` spans that recorded them."""
    answered = {m.get("tool_call_id") for m in messages if m.get("role") == "tool"}
    by_id = {str(s.attrs.get("gen_ai.tool.call.id")): s.attrs["gen_ai.tool.call.result"]
             for s in spans if s.attrs.get("gen_ai.operation.name") == "execute_tool"
             and "gen_ai.tool.call.result" in s.attrs}
    at = 0
    while at < len(messages):
        m = messages[at]
        at += 1
        for tc in m.get("tool_calls") or []:
            if tc["id"] not in answered and tc["id"] in by_id:
                messages.insert(at, {"role": "tool", "tool_call_id": tc["id"],
                                     "content": _content(by_id[tc["id"]])})
                at += 1


def _label(spans: list[_Span]) -> tuple[str | None, float | None]:
    found: list[dict[str, Any]] = [a for s in spans for name, a in s.events
                                   if name == "gen_ai.evaluation.result"]
    found += [s.attrs for s in spans if "gen_ai.evaluation.score.value" in s.attrs
              or "gen_ai.evaluation.score.label" in s.attrs]
    label: str | None = None
    score: float | None = None
    for attrs in found:
        text = str(attrs.get("gen_ai.evaluation.score.label", "")).lower()
        if text in BAD_LABELS:
            return "bad", None  # any bad judgement wins
        if text in GOOD_LABELS:
            label = "good"
        value = attrs.get("gen_ai.evaluation.score.value")
        if isinstance(value, int | float) and not isinstance(value, bool):
            score = float(value) if score is None else min(score, float(value))
    return label, score


