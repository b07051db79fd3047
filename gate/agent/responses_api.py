"""The OpenAI Responses API (``POST /v1/responses``) at the recording endpoint, translated to
chat completions, so every provider (they all speak those) answers it with the same guarantees:
pricing, budget, rate limit, retries, one audit line per attempt with the provider's response id.

Request: ``input`` (a string, or items: messages with text parts, ``function_call``,
``function_call_output``; ``reasoning`` items are dropped), ``instructions`` (a system message,
not carried over by ``previous_response_id``, as OpenAI does), function ``tools``,
``tool_choice``, ``parallel_tool_calls``, ``text.format`` (``json_schema`` with ``strict``,
``json_object``) as ``response_format``, ``reasoning.effort`` as ``reasoning_effort``,
``max_output_tokens``, ``temperature``, ``top_p``, ``stream``. ``previous_response_id`` names an
earlier response of the same trial: its conversation continues. Anything else that would
change the answer (hosted tools, ``conversation``, ``background``...) is refused with 400.

Response: a ``response`` object whose id is the provider's response id (the audit line's),
``output`` items ``message`` (``output_text``) and ``function_call``, usage in input/output
tokens; streamed as the Responses events (``response.created`` ... ``response.completed``).

A provider that declares ``responses_api: true`` gets the request natively instead
(``native_problem`` lists what gate still refuses first; ``chat_view`` reads its answer for the
trial's records; ``events_of`` streams it).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from gate.providers.base import ChatResponse, ResponsesResult

ACCEPTED = frozenset({"model", "input", "instructions", "tools", "tool_choice",
                      "parallel_tool_calls", "text", "previous_response_id", "stream",
                      "max_output_tokens", "temperature", "top_p", "reasoning"})
IGNORED = frozenset({"store", "metadata", "user", "include", "truncation", "service_tier",
                     "prompt_cache_key", "prompt_cache_retention", "safety_identifier",
                     "stream_options"})
DEFAULTS_ONLY = {"background": (None, False), "top_logprobs": (None, 0),
                 "max_tool_calls": (None,)}


class Refused(ValueError):
    """A Responses request gate cannot translate faithfully (answered with 400)."""


def to_chat_body(body: dict[str, Any], history: dict[str, list[dict[str, Any]]]
                 ) -> dict[str, Any]:
    """The chat-completions body a Responses body asks for. ``history`` maps this trial's
    response ids to their conversations. Raises ``Refused``."""
    for key in body:
        if key in DEFAULTS_ONLY and body[key] not in DEFAULTS_ONLY[key]:
            raise Refused(f"{key}={body[key]!r} is not supported")
        if key not in ACCEPTED and key not in IGNORED and key not in DEFAULTS_ONLY:
            raise Refused(f"Unrecognized request argument supplied: {key}")
    chat: dict[str, Any] = {"model": body.get("model"),
                            "messages": conversation(body, history)}
    if body.get("tools"):
        chat["tools"] = [_tool(t) for t in _list(body["tools"], "tools")]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    for src, dst in (("parallel_tool_calls", "parallel_tool_calls"), ("temperature", "temperature"),
                     ("top_p", "top_p"), ("max_output_tokens", "max_completion_tokens")):
        if body.get(src) is not None:
            chat[dst] = body[src]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        chat["reasoning_effort"] = effort
    fmt = ((body.get("text") or {}).get("format")) or {}
    if fmt.get("type") == "json_schema":
        chat["response_format"] = {"type": "json_schema", "json_schema": {
            k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}}
    elif fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif fmt.get("type") not in (None, "text"):
        raise Refused(f"text.format type {fmt.get('type')!r} is not supported")
    return chat


def conversation(body: dict[str, Any], history: dict[str, list[dict[str, Any]]]
                 ) -> list[dict[str, Any]]:
    """The chat messages: instructions, the earlier response's conversation, then ``input``."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": str(body["instructions"])})
    previous = body.get("previous_response_id")
    if previous is not None:
        if previous not in history:
            raise Refused(f"previous_response_id {previous!r} is not a response of this trial")
        messages += history[previous]
    raw = body.get("input")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else _list(raw, "input")
    for item in items:
        _add_item(messages, item)
    return messages


def _add_item(messages: list[dict[str, Any]], item: Any) -> None:
    if not isinstance(item, dict):
        raise Refused("every input item must be an object")
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "system", "developer", "assistant"):
            raise Refused(f"unknown message role {role!r}")
        text = _text(item.get("content"))
        messages.append({"role": "system" if role == "developer" else role, "content": text})
    elif kind == "function_call":
        call = {"id": str(item.get("call_id")), "type": "function",
                "function": {"name": str(item.get("name")),
                             "arguments": str(item.get("arguments") or "{}")}}
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and \
                (last.get("tool_calls") or not last.get("content")):
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        messages.append({"role": "tool", "tool_call_id": str(item.get("call_id")),
                         "content": _text(item.get("output"))})
    elif kind != "reasoning":  # reasoning items carry nothing a chat provider takes
        raise Refused(f"input item type {kind!r} is not supported")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content
                       if isinstance(p, dict) and p.get("type") in
                       ("input_text", "output_text", "text"))
    raise Refused("message content must be a string or a list of text parts")


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise Refused(f"{name} must be a string or a list")
    return value


def _tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise Refused(f"tool type {kind!r} is not supported (function tools only)")
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict")
                if tool.get(k) is not None}
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            raise Refused(f"tool_choice type {choice.get('type')!r} is not supported")
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


# --- the answer ----------------------------------------------------------------------------


def output_items(response: ChatResponse) -> list[dict[str, Any]]:
    message = response.message
    items: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str) and content:
        items.append({"type": "message", "id": f"msg_{response.response_id}", "status":
                      "completed", "role": "assistant", "content": [
                          {"type": "output_text", "text": content, "annotations": []}]})
    for i, tc in enumerate(message.get("tool_calls") or []):
        fn = tc.get("function") or {}
        arguments = fn.get("arguments")
        items.append({"type": "function_call", "id": f"fc_{response.response_id}_{i}",
                      "call_id": str(tc.get("id")), "name": str(fn.get("name")),
                      "arguments": arguments if isinstance(arguments, str)
                      else json.dumps(arguments), "status": "completed"})
    return items


def assistant_turn(response: ChatResponse) -> dict[str, Any]:
    """The assistant message kept for ``previous_response_id``."""
    turn: dict[str, Any] = {"role": "assistant", "content": response.message.get("content")}
    if response.message.get("tool_calls"):
        turn["tool_calls"] = response.message["tool_calls"]
    return turn


def response_body(body: dict[str, Any], response: ChatResponse, *, done: bool = True
                  ) -> dict[str, Any]:
    u = response.usage
    return {
        "id": response.response_id, "object": "response", "created_at": int(time.time()),
        "status": "completed" if done else "in_progress", "model": body.get("model"),
        "output": output_items(response) if done else [],
        "instructions": body.get("instructions"), "error": None, "incomplete_details": None,
        "metadata": body.get("metadata") or {}, "parallel_tool_calls":
            body.get("parallel_tool_calls", True), "previous_response_id":
            body.get("previous_response_id"), "temperature": body.get("temperature"),
        "top_p": body.get("top_p"), "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [], "text": body.get("text") or {"format": {"type": "text"}},
        "max_output_tokens": body.get("max_output_tokens"), "truncation": "disabled",
        "reasoning": body.get("reasoning"),
        "usage": {"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens,
                  "total_tokens": u.prompt_tokens + u.completion_tokens,
                  "input_tokens_details": {"cached_tokens": u.cached_tokens},
                  "output_tokens_details": {"reasoning_tokens": 0}} if done else None,
    }


def stream_events(body: dict[str, Any], response: ChatResponse) -> list[dict[str, Any]]:
    """The complete response as Responses stream events, in order."""
    return events_of(response_body(body, response))


def events_of(final: dict[str, Any]) -> list[dict[str, Any]]:
    """A complete ``response`` object (gate's or a provider's) as stream events, in order."""
    events: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    started = {**final, "status": "in_progress", "output": [], "usage": None}
    emit("response.created", response=started)
    emit("response.in_progress", response=started)
    for index, item in enumerate(final.get("output") or []):
        if isinstance(item, dict):
            _item_events(emit, index, item)
    ending = final.get("status") if final.get("status") in ("incomplete", "failed") \
        else "completed"
    emit(f"response.{ending}", response=final)
    return events


def _item_events(emit: Any, index: int, item: dict[str, Any]) -> None:
    ids = {"item_id": item.get("id"), "output_index": index}
    if item.get("type") == "message":
        emit("response.output_item.added", output_index=index,
             item={**item, "status": "in_progress", "content": []})
        for part_index, part in enumerate(item.get("content") or []):
            _part_events(emit, ids, part_index, part)
    elif item.get("type") == "function_call":
        emit("response.output_item.added", output_index=index,
             item={**item, "status": "in_progress", "arguments": ""})
        emit("response.function_call_arguments.delta", **ids, delta=item["arguments"])
        emit("response.function_call_arguments.done", **ids, arguments=item["arguments"],
             name=item["name"])
    else:  # reasoning and other items: announced and done whole
        emit("response.output_item.added", output_index=index, item=item)
    emit("response.output_item.done", output_index=index, item=item)


def _part_events(emit: Any, ids: dict[str, Any], index: int, part: Any) -> None:
    text = part.get("text") if isinstance(part, dict) else None
    if not isinstance(text, str) or part.get("type") != "output_text":
        emit("response.content_part.added", **ids, content_index=index, part=part)
        emit("response.content_part.done", **ids, content_index=index, part=part)
        return
    empty = {**part, "text": ""}
    emit("response.content_part.added", **ids, content_index=index, part=empty)
    for i in range(0, len(text), 64):
        emit("response.output_text.delta", **ids, content_index=index, delta=text[i:i + 64],
             logprobs=[])
    emit("response.output_text.done", **ids, content_index=index, text=text, logprobs=[])
    emit("response.content_part.done", **ids, content_index=index, part=part)


# --- native forwarding ----------------------------------------------------------------------

REFUSED_NATIVE = {"conversation": "conversation state lives outside the trial; use "
                  "previous_response_id",
                  "prompt": "a stored prompt is not the repository's prompt"}


def native_problem(body: dict[str, Any], history: dict[str, Any]) -> str | None:
    """What gate refuses before forwarding a Responses body natively (None when nothing).

    The provider judges every other field itself, as it would the program's own call; gate
    refuses only what would take the trial out of its records: state kept elsewhere
    (``conversation``, a stored ``prompt``, a ``previous_response_id`` of another trial),
    ``background`` responses, and tools that are not functions (the trial's tools are its MCP
    server's; a hosted tool would act where gate does not see it)."""
    for key, why in REFUSED_NATIVE.items():
        if body.get(key) is not None:
            return f"{key} is not supported: {why}"
    if body.get("background") not in (None, False):
        return f"background={body['background']!r} is not supported"
    previous = body.get("previous_response_id")
    if previous is not None and previous not in history:
        return f"previous_response_id {previous!r} is not a response of this trial"
    raw = body.get("input")
    if not isinstance(raw, str | list):
        return "input must be a string or a list"
    try:
        for tool in _list(body.get("tools") or [], "tools"):
            _tool(tool)
    except Refused as exc:
        return str(exc)
    limit, temperature = body.get("max_output_tokens"), body.get("temperature")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        return "max_output_tokens must be a positive integer"
    if temperature is not None and (isinstance(temperature, bool)
                                    or not isinstance(temperature, int | float)):
        return "temperature must be a number"
    return None


def chat_view(result: ResponsesResult) -> ChatResponse:
    """A provider's ``response`` read as an assistant message, for the trial's records
    (transcript, tokens, cost, tool calls whose arguments do not parse)."""
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in result.body.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            text += [str(p.get("text", "")) for p in item.get("content") or []
                     if isinstance(p, dict) and p.get("type") == "output_text"]
        elif item.get("type") == "function_call":
            calls.append({"id": str(item.get("call_id")), "type": "function", "function": {
                "name": str(item.get("name")), "arguments": item.get("arguments")}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = calls
    return ChatResponse(result.response_id, message, result.usage, result.cost_usd,
                        result.latency_s, result.http_status, result.finish_reason)


def input_view(body: dict[str, Any], history: dict[str, list[dict[str, Any]]]
               ) -> list[dict[str, Any]]:
    """The request as chat messages for the transcript (items gate cannot read are shown as
    their JSON)."""
    try:
        return conversation(body, history)
    except Refused:
        return [{"role": "user", "content": json.dumps(body.get("input"))}]



async def sse(events: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    """The events as server-sent events, in one write (as gate.agent.chat_api.sse)."""
    yield b"".join(f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}"
                   "\n\n".encode() for event in events)
