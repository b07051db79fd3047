"""Chat completions as the recording endpoint speaks them to a program: which request fields
are forwarded, ignored or refused (``field_problem``), the provider request a checked body
becomes (``chat_request``), and the answer's shapes (``completion_body``; ``sse_chunks`` when
streamed). No I/O: gate.agent.endpoint serves them."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from gate.agent.loop import TrialSpec
from gate.providers.base import (
    BEHAVIOUR_FIELDS,
    ChatRequest,
    ChatResponse,
    response_format_problem,
    tool_choice_problem,
)

FORWARDED = frozenset({"model", "messages", "tools", "tool_choice", "temperature", "max_tokens",
                       "max_completion_tokens", "stream", "stream_options", *BEHAVIOUR_FIELDS})
IGNORED_FIELDS = frozenset({"user", "metadata", "store", "service_tier", "prompt_cache_key",
                            "prompt_cache_retention", "safety_identifier"})
"""Accepted, not forwarded: they cannot change the answer (recorded in the trial)."""
DEFAULTS_ONLY = {"n": (None, 1), "logprobs": (None, False), "top_logprobs": (None, 0)}
"""Accepted only at their default value (gate answers one choice, without log probabilities)."""


def chat_request(spec: TrialSpec, body: dict[str, Any]) -> ChatRequest:
    """The provider request for a checked chat-completions body."""
    return ChatRequest(
        model=spec.model, messages=body["messages"], tools=list(body.get("tools") or []),
        seed=spec.seed, max_tokens=max_tokens_of(spec, body),
        temperature=temperature_of(spec, body),
        tool_choice=body.get("tool_choice") or "auto",
        options={k: body[k] for k in sorted(BEHAVIOUR_FIELDS) if body.get(k) is not None},
    )


def field_problem(body: dict[str, Any]) -> str | None:
    """Why a chat-completions body asks for what gate cannot pass on (None when it does not)."""
    for key in body:
        if key in FORWARDED or key in IGNORED_FIELDS or key == "seed":
            continue
        if key in DEFAULTS_ONLY:
            if body[key] not in DEFAULTS_ONLY[key]:
                return f"{key}={body[key]!r} is not supported (only {DEFAULTS_ONLY[key][1]!r})"
            continue
        return f"Unrecognized request argument supplied: {key}"
    return tool_choice_problem(body.get("tool_choice"), list(body.get("tools") or [])) \
        or response_format_problem(body.get("response_format"))


def number_ok(value: Any, real: bool) -> bool:
    """Absent, or a number (``real``) / a positive integer (else); never a bool."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) if real else isinstance(value, int) and value > 0


def temperature_of(spec: TrialSpec, body: dict[str, Any]) -> float:
    """The program's temperature, else ``run.temperature``."""
    asked = body.get("temperature")
    return spec.temperature if asked is None else float(asked)


def max_tokens_of(spec: TrialSpec, body: dict[str, Any]) -> int:
    """The program's limit capped at ``run.max_tokens`` (the budget's projection), else it."""
    asked = body.get("max_completion_tokens", body.get("max_tokens"))
    return spec.max_tokens if asked is None else min(int(asked), spec.max_tokens)


def finish_reason(message: dict[str, Any]) -> str:
    """The answer's ``finish_reason`` as the program sees it."""
    return "tool_calls" if message.get("tool_calls") else "stop"


def usage_of(response: ChatResponse) -> dict[str, Any]:
    """The answer's ``usage`` object, with gate's computed cost."""
    u = response.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens, "cost": response.cost_usd}


def completion_body(model: str, response: ChatResponse) -> dict[str, Any]:
    """The ``chat.completion`` object the agent gets (the provider's response id)."""
    message = {k: v for k, v in response.message.items() if v is not None or k == "content"}
    message["role"] = "assistant"
    return {
        "id": response.response_id, "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": finish_reason(response.message)}],
        "usage": usage_of(response),
    }


def sse_chunks(model: str, response: ChatResponse, include_usage: bool) -> list[dict[str, Any]]:
    """The complete response as ``chat.completion.chunk`` objects, in order: one delta with
    the role, the whole content and every tool call (name, id and arguments), the finish
    reason, then the usage when asked for. The provider's answer is already complete, so it is
    not cut into token-sized deltas: the format lets a delta carry any part of the message,
    clients reassemble them alike, and each chunk costs the program a parse."""
    head = {"id": response.response_id, "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra}

    message = response.message
    first: dict[str, Any] = {"role": "assistant"}
    content = message.get("content")
    first["content"] = content if isinstance(content, str) else ""
    calls = []
    for i, tc in enumerate(message.get("tool_calls") or []):
        fn = tc.get("function") or {}
        arguments = fn.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append({"index": i, "id": tc.get("id"), "type": "function",
                      "function": {"name": fn.get("name"), "arguments": arguments}})
    if calls:
        first["tool_calls"] = calls
    chunks = [chunk(first), chunk({}, finish_reason(message))]
    if include_usage:
        chunks.append({**head, "choices": [], "usage": usage_of(response)})
    return chunks


async def sse(model: str, response: ChatResponse, include_usage: bool) -> AsyncIterator[bytes]:
    """``sse_chunks`` as server-sent events, then ``[DONE]``: in one write, since the
    provider's response is already complete (each write is a packet and a wake-up of the
    program; the events parse the same however the bytes are split)."""
    yield b"".join([*(f"data: {json.dumps(c, separators=(',', ':'))}\n\n".encode()
                      for c in sse_chunks(model, response, include_usage)),
                    b"data: [DONE]\n\n"])
