"""The recording OpenAI-compatible endpoint an agent program talks to during one trial.

Each ``POST /v1/chat/completions`` is checked (the trial's bearer token, the arm's model, the
step limit) and then answered by calling the *same* ``Provider`` object the built-in loop uses,
so it gets what the loop's calls get: exact-id pricing, the budget projection, the rate limit,
retries, and one audit line per attempt with the provider's response id.

What is forwarded: ``messages``, ``tools``, ``temperature`` (default ``run.temperature``) and
``max_tokens``/``max_completion_tokens`` (capped at ``run.max_tokens``, the figure the budget
projection uses). The seed is the trial's (the pairing of the paired design). Other request
fields are accepted and not forwarded; their names are recorded in the trial.

``stream: true`` is answered as server-sent events (``chat.completion.chunk`` events, then
``[DONE]``; usage in a final chunk when ``stream_options.include_usage``), chunked here from the
provider's complete response.

A call that still fails after the provider's retries is answered with the provider's error
and ends the trial (lost to the provider, as with the built-in loop); a halt (HTTP 402, budget)
is answered with 402 and ends it too.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gate.agent.loop import TrialSpec, TrialTrace
from gate.environments.base import Environment
from gate.errors import HaltError
from gate.providers.base import (
    Attempt,
    AttemptStart,
    ChatRequest,
    ChatResponse,
    Provider,
    ProviderError,
)

AuditSink = Callable[[int, Attempt], None]  # (step, attempt) -> the engine's audit writer
FORWARDED = frozenset({"model", "messages", "tools", "temperature", "max_tokens",
                       "max_completion_tokens", "stream", "stream_options"})
MAX_BODY = 8 * 1024 * 1024
ENDING_S = 1.0  # an ending trial's program gets its answer; the trial ends after this at most


class _StepSink:
    """The provider's attempt sink for one model call: two-phase (``TwoPhaseSink``) when the
    engine's audit writer has ``started(step, start)`` (audit before send)."""

    def __init__(self, audit: AuditSink, step: int) -> None:
        self._audit = audit
        self._step = step

    def __call__(self, attempt: Attempt) -> None:
        self._audit(self._step, attempt)

    def started(self, start: AttemptStart) -> None:
        started = getattr(self._audit, "started", None)
        if started is not None:
            started(self._step, start)


@dataclass
class TrialSession:
    """The state one trial's endpoint and MCP server share."""

    spec: TrialSpec
    env: Environment
    provider: Provider
    audit: AuditSink
    token: str
    trace: TrialTrace = field(default_factory=TrialTrace)
    seen: set[str] = field(default_factory=set)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: BaseException | str | None = None
    model_calls: int = 0
    mcp_calls: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    ignored_fields: set[str] = field(default_factory=set)

    def end(self, reason: BaseException | str) -> None:
        """The trial must end now (the first reason wins)."""
        if self.end_reason is None:
            self.end_reason = reason
        self.ended.set()


def endpoint_routes(session: TrialSession) -> list[Route]:
    async def completions(request: Request) -> Response:
        return await _completions(session, request)

    async def models(request: Request) -> Response:
        if not _authorized(session, request):
            return _error(401, "invalid token for this trial", "invalid_api_key")
        return JSONResponse({"object": "list", "data": [_model_entry(session.spec.model)]})

    return [Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"])]


def _model_entry(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "gate"}


def _ending(session: TrialSession, reason: BaseException | str, response: Response) -> Response:
    """Answer the agent, then end the trial: once the answer is sent, or in a second at most."""
    if session.end_reason is None:
        session.end_reason = reason
    response.background = BackgroundTask(session.end, reason)
    asyncio.get_running_loop().call_later(ENDING_S, session.end, reason)
    return response


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": code, "code": code}},
                        status_code=status)


def _authorized(session: TrialSession, request: Request) -> bool:
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {session.token}".encode())


async def _completions(session: TrialSession, request: Request) -> Response:
    if not _authorized(session, request):
        session.rejected["auth"] += 1
        return _error(401, "invalid token for this trial", "invalid_api_key")
    if session.end_reason is not None:
        session.rejected["after_end"] += 1
        return _error(409, "this trial has ended", "trial_ended")
    body = await _read_body(request)
    problem = _check_body(session, body)
    if problem is not None:
        return problem
    assert isinstance(body, dict)
    step = session.model_calls + 1
    if step > session.spec.task.task.step_limit:
        session.trace.ended = "step_limit"
        return _ending(session, "step_limit", _error(
            400, f"step limit of {session.spec.task.task.step_limit} model calls reached",
            "step_limit"))
    session.model_calls = step
    session.trace.steps = step
    session.ignored_fields.update(k for k in body if k not in FORWARDED)
    chat = ChatRequest(
        model=session.spec.model, messages=body["messages"], tools=list(body.get("tools") or []),
        seed=session.spec.seed, max_tokens=_max_tokens(session.spec, body),
        temperature=_temperature(session.spec, body),
    )
    session.trace.transcript.request(step, chat.messages)  # the trial's transcript
    try:
        response = await session.provider.complete(chat, _StepSink(session.audit, step))
    except HaltError as exc:
        return _ending(session, exc, _error(402, f"gate halted the run: {exc.reason}", "halted"))
    except ProviderError as exc:
        status = exc.status if exc.status is not None and exc.status >= 400 else 502
        return _ending(session, exc, _error(status, str(exc), exc.kind.value))
    except Exception as exc:  # a bug: end the trial, the adapter re-raises it
        return _ending(session, exc, _error(500, "internal error in gate's endpoint",
                                            "internal_error"))
    session.trace.transcript.answer(response.message, response.response_id,
                                    response.finish_reason)
    _record(session, response)
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_sse(chat.model, response, include_usage),
                                 media_type="text/event-stream")
    return JSONResponse(completion_body(chat.model, response))


async def _read_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _check_body(session: TrialSession, body: Any) -> Response | None:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        session.rejected["bad_request"] += 1
        return _error(400, "the body must be a JSON object with a list of message objects",
                      "invalid_request_error")
    if body.get("model") != session.spec.model:
        session.rejected["model"] += 1
        return _error(404, f"this trial serves only the model {session.spec.model!r}",
                      "model_not_found")
    tools, temperature = body.get("tools"), body.get("temperature")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if (tools is not None and not isinstance(tools, list)) or not _number(temperature, True) \
            or not _number(limit, False):
        session.rejected["bad_request"] += 1
        return _error(400, "tools must be a list, temperature and max_tokens numbers",
                      "invalid_request_error")
    return None


def _number(value: Any, real: bool) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) if real else isinstance(value, int) and value > 0


def _temperature(spec: TrialSpec, body: dict[str, Any]) -> float:
    asked = body.get("temperature")
    return spec.temperature if asked is None else float(asked)


def _max_tokens(spec: TrialSpec, body: dict[str, Any]) -> int:
    asked = body.get("max_completion_tokens", body.get("max_tokens"))
    return spec.max_tokens if asked is None else min(int(asked), spec.max_tokens)


def _record(session: TrialSession, response: ChatResponse) -> None:
    """Tokens, cost and response id; tool calls whose arguments cannot reach the MCP server."""
    trace = session.trace
    trace.response_ids.append(response.response_id)
    trace.tokens_in += response.usage.prompt_tokens
    trace.tokens_out += response.usage.completion_tokens
    trace.cost_usd += response.cost_usd
    for tc in response.message.get("tool_calls") or []:
        raw = (tc.get("function") or {}).get("arguments")
        try:
            ok = isinstance(json.loads(raw) if isinstance(raw, str) else raw, dict)
        except ValueError:
            ok = False
        if not ok:  # the program cannot pass these on as an MCP call: count them here
            trace.tool_calls += 1
            trace.invalid["unparseable"] += 1
            name = str((tc.get("function") or {}).get("name", ""))
            trace.calls.append({"step": trace.steps, "call_id": tc.get("id"), "tool": name,
                                "invalid": "unparseable", "via": "endpoint"})


def _finish_reason(message: dict[str, Any]) -> str:
    return "tool_calls" if message.get("tool_calls") else "stop"


def _usage(response: ChatResponse) -> dict[str, Any]:
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
                     "finish_reason": _finish_reason(response.message)}],
        "usage": _usage(response),
    }


def sse_chunks(model: str, response: ChatResponse, include_usage: bool) -> list[dict[str, Any]]:
    """The complete response as ``chat.completion.chunk`` objects, in order."""
    head = {"id": response.response_id, "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra}

    message = response.message
    chunks = [chunk({"role": "assistant", "content": ""})]
    content = message.get("content")
    if isinstance(content, str) and content:
        chunks += [chunk({"content": content[i:i + 64]}) for i in range(0, len(content), 64)]
    for i, tc in enumerate(message.get("tool_calls") or []):
        fn = tc.get("function") or {}
        chunks.append(chunk({"tool_calls": [{
            "index": i, "id": tc.get("id"), "type": "function",
            "function": {"name": fn.get("name"), "arguments": ""}}]}))
        arguments = fn.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        chunks.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": arguments}}]}))
    chunks.append(chunk({}, _finish_reason(message)))
    if include_usage:
        chunks.append({**head, "choices": [], "usage": _usage(response)})
    return chunks


async def _sse(model: str, response: ChatResponse, include_usage: bool) -> AsyncIterator[bytes]:
    for c in sse_chunks(model, response, include_usage):
        yield f"data: {json.dumps(c, separators=(',', ':'))}\n\n".encode()
    yield b"data: [DONE]\n\n"
