"""Chat completions as a server-sent event stream (``stream: true``), both ways.

A streamed completion is a sequence of ``data: {chat.completion.chunk}`` events ending with
``data: [DONE]``. Each chunk carries a ``delta`` of ``choices[0]``: the role, pieces of
``content`` (or ``refusal``, ``reasoning``), and tool calls piece by piece (the first piece of
call ``index`` has its ``id`` and ``function.name``, later pieces add to ``function.arguments``).
The last choice chunk has the ``finish_reason``; when the request asked for
``stream_options.include_usage``, one more chunk with no choices carries the ``usage``. Lines
starting with ``:`` are comments (OpenRouter sends ``: OPENROUTER PROCESSING`` to keep the
connection alive) and are skipped. An event with an ``error`` object is an error that arrived
after the stream started.

``chunks_of`` cuts a whole completion into chunks (the mock server streams with it);
``assemble`` puts chunks back together into the body of a non-streamed completion, so the
rest of the client path (``classify``, pricing, the audit) does not care how it arrived;
``parse_events`` and ``read_stream`` read the event stream itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from gate.providers.base import ChatResponse, Usage

DONE = "[DONE]"
PIECE_CHARS = 16  # the mock server cuts text and arguments into pieces of this many characters


class StreamError(ValueError):
    """An event stream that cannot be read (an event that is not JSON)."""


def _pieces(text: str, size: int = PIECE_CHARS) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def chunks_of(completion: dict[str, Any], *, include_usage: bool) -> list[dict[str, Any]]:
    """The chunks that stream ``completion`` (a chat.completion body with one choice)."""
    choice = completion["choices"][0]
    message = choice["message"]
    head = {"id": completion["id"], "object": "chat.completion.chunk",
            "created": completion["created"], "model": completion["model"]}
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra}

    out = [chunk({"role": "assistant", "content": ""})]
    for key in ("reasoning", "content", "refusal"):
        if isinstance(message.get(key), str) and message[key]:
            out.extend(chunk({key: piece}) for piece in _pieces(message[key]))
    if message.get("reasoning_details"):
        out.append(chunk({"reasoning_details": message["reasoning_details"]}))
    for index, call in enumerate(message.get("tool_calls") or []):
        fn = call.get("function") or {}
        out.append(chunk({"tool_calls": [{
            "index": index, "id": call.get("id"), "type": "function",
            "function": {"name": fn.get("name"), "arguments": ""}}]}))
        out.extend(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                   for piece in _pieces(str(fn.get("arguments") or "")))
    out.append(chunk({}, choice.get("finish_reason")))
    if include_usage:
        out.append({**head, "choices": [], "usage": completion.get("usage")})
    return out


def encode(chunks: Iterable[dict[str, Any]]) -> bytes:
    """The event stream of ``chunks``, ending with ``data: [DONE]``."""
    events = [f"data: {json.dumps(c, separators=(',', ':'))}\n\n" for c in chunks]
    return ("".join(events) + f"data: {DONE}\n\n").encode()


def parse_events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON objects of the ``data:`` events in ``lines``, up to ``[DONE]``."""
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.startswith("data:"):
            continue  # blank separators, comments (":"), "event:"/"id:" fields
        data = line[5:].strip()
        if data == DONE:
            return
        try:
            event = json.loads(data)
        except ValueError:
            raise StreamError("an event of the stream is not JSON") from None
        if not isinstance(event, dict):
            raise StreamError("an event of the stream is not a JSON object")
        yield event


async def read_stream(lines: AsyncIterator[str]) -> dict[str, Any]:
    """Read an event stream (e.g. ``httpx.Response.aiter_lines()``) into a completion body."""
    collected: list[str] = []
    async for line in lines:
        collected.append(line)
        if line.strip() == f"data: {DONE}":
            break
    return assemble(parse_events(collected))


def assemble(chunks: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The chat.completion body the ``chunks`` stream; an ``error`` event is returned as is."""
    body: dict[str, Any] = {"object": "chat.completion"}
    message: dict[str, Any] = {"role": "assistant", "content": None}
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    for chunk in chunks:
        if "error" in chunk:
            return {"id": body.get("id"), "error": chunk["error"]}
        for key in ("id", "created", "model", "provider"):
            if key in chunk and key not in body:
                body[key] = chunk[key]
        if chunk.get("usage"):
            body["usage"] = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            _apply(message, calls, choice.get("delta") or {})
            finish = choice.get("finish_reason") or finish
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    body["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
    return body


def _apply(
    message: dict[str, Any], calls: dict[int, dict[str, Any]], delta: dict[str, Any]
) -> None:
    for key in ("content", "refusal", "reasoning"):
        piece = delta.get(key)
        if isinstance(piece, str):
            message[key] = (message.get(key) or "") + piece
    if isinstance(delta.get("reasoning_details"), list):
        message.setdefault("reasoning_details", []).extend(delta["reasoning_details"])
    for part in delta.get("tool_calls") or []:
        index = int(part.get("index", 0))
        call = calls.setdefault(index, {"id": None, "type": "function",
                                        "function": {"name": "", "arguments": ""}})
        if part.get("id"):
            call["id"] = part["id"]
        fn = part.get("function") or {}
        if fn.get("name"):
            call["function"]["name"] += fn["name"]
        if isinstance(fn.get("arguments"), str):
            call["function"]["arguments"] += fn["arguments"]


def to_chat_response(body: dict[str, Any], *, cost_usd: float, latency_s: float) -> ChatResponse:
    """A ``ChatResponse`` from an assembled body that ``classify`` accepted (usage present)."""
    usage = body["usage"]
    details = usage.get("prompt_tokens_details") or {}
    cost = usage.get("cost")
    return ChatResponse(
        response_id=str(body.get("id") or ""), message=body["choices"][0]["message"],
        usage=Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]),
                    float(cost) if cost is not None else None,
                    int(details.get("cached_tokens") or 0)),
        cost_usd=cost_usd, latency_s=latency_s,
        finish_reason=body["choices"][0].get("finish_reason"),
    )
