"""Transcript messages (OpenAI chat format) as OpenTelemetry GenAI messages: the JSON of
``gen_ai.input.messages`` / ``gen_ai.output.messages`` that the official instrumentation
writes, ``[{"role", "parts": [...], "finish_reason"}]`` with parts ``text``, ``tool_call``
(``id``, ``name``, ``arguments``), ``tool_call_response`` (``id``, ``response``) and
``reasoning``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

OMITTED = "[left out of the transcript by its size cap]"


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _text_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            parts.append({"type": "text", "content": part["text"]})
    return parts


def genai_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """One chat message as a GenAI message (without ``finish_reason``)."""
    role = str(message.get("role") or "user")
    if message.get("omitted"):
        return {"role": role, "parts": [{"type": "text", "content": OMITTED}]}
    if role == "tool":
        return {"role": "tool", "parts": [{
            "type": "tool_call_response", "id": str(message.get("tool_call_id") or ""),
            "response": message.get("content")}]}
    parts: list[dict[str, Any]] = []
    reasoning = message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        parts.append({"type": "reasoning", "content": reasoning})
    parts += _text_parts(message.get("content"))
    for tc in message.get("tool_calls") or []:
        if not isinstance(tc, Mapping):
            continue
        fn = tc.get("function") or {}
        parts.append({"type": "tool_call", "id": str(tc.get("id") or ""),
                      "name": str(fn.get("name") or ""),
                      "arguments": _arguments(fn.get("arguments"))})
    return {"role": role, "parts": parts}


def input_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    """``gen_ai.input.messages``: what a model call was sent."""
    return _json([genai_message(m) for m in messages])


def output_messages(message: Mapping[str, Any], finish_reason: str | None) -> str:
    """``gen_ai.output.messages``: the answer, with its finish reason."""
    return _json([{**genai_message(message), "finish_reason": finish_reason or "stop"}])


def text_message(role: str, text: str, finish_reason: str | None = None) -> str:
    """A one-text-part message list (the trial's instruction, its final answer)."""
    message: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": text}]}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return _json([message])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
