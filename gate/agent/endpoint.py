"""The recording OpenAI-compatible endpoint an agent program talks to during one trial.

Each ``POST /v1/chat/completions`` (and ``POST /v1/responses``, translated by
gate.agent.responses_api) is checked (the trial's bearer token, the arm's model, the
step limit) and then answered by calling the *same* ``Provider`` object the built-in loop uses,
so it gets what the loop's calls get: exact-id pricing, the budget projection, the rate limit,
retries, and one audit line per attempt with the provider's response id.

What is forwarded: ``messages``, ``tools``, ``tool_choice`` (checked against the tools),
``temperature`` (default ``run.temperature``), ``max_tokens``/``max_completion_tokens`` (capped at
``run.max_tokens``, the figure the budget projection uses), and every field of
``BEHAVIOUR_FIELDS`` as given (``response_format`` checked first): a provider that does not
support one refuses the request itself. The seed is the trial's (the pairing of the paired
design); a program's own ``seed`` is recorded as replaced. Fields that cannot change the answer
(``IGNORED_FIELDS``) are accepted and recorded; any other field is refused with 400, as OpenAI
refuses an unrecognised argument, never silently dropped.

The model is the arm's id or its alias (``model_alias``: no ``/``, so an SDK that reads
``prefix/model`` takes it unchanged).

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
from gate.agent.responses_api import (
    IGNORED,
    Refused,
    assistant_turn,
    response_body,
    stream_events,
    to_chat_body,
)
from gate.agent.responses_api import sse as responses_sse
from gate.environments.base import Environment
from gate.errors import HaltError
from gate.providers.base import (
    BEHAVIOUR_FIELDS,
    Attempt,
    AttemptStart,
    ChatRequest,
    ChatResponse,
    Provider,
    ProviderError,
    response_format_problem,
    tool_choice_problem,
)

AuditSink = Callable[[int, Attempt], None]  # (step, attempt) -> the engine's audit writer
FORWARDED = frozenset({"model", "messages", "tools", "tool_choice", "temperature", "max_tokens",
                       "max_completion_tokens", "stream", "stream_options", *BEHAVIOUR_FIELDS})
IGNORED_FIELDS = frozenset({"user", "metadata", "store", "service_tier", "prompt_cache_key",
                            "prompt_cache_retention", "safety_identifier"})
"""Accepted, not forwarded: they cannot change the answer (recorded in the trial)."""
DEFAULTS_ONLY = {"n": (None, 1), "logprobs": (None, False), "top_logprobs": (None, 0)}
"""Accepted only at their default value (gate answers one choice, without log probabilities)."""
MAX_BODY = 8 * 1024 * 1024
TRIAL_PREFIX = "/trial/{trial}"  # every trial's endpoint has its own path on the run's server
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
    replaced_fields: set[str] = field(default_factory=set)
    conversations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Responses API: each response id's conversation, for ``previous_response_id``."""
    on_contact: Callable[[], None] | None = None
    """Called once, at the first request routed to this trial (endpoint or MCP)."""

    def contact(self) -> None:
        """A request for this trial arrived."""
        if self.on_contact is not None:
            callback, self.on_contact = self.on_contact, None
            callback()

    def end(self, reason: BaseException | str) -> None:
        """The trial must end now (the first reason wins)."""
        if self.end_reason is None:
            self.end_reason = reason
        self.ended.set()


def endpoint_routes(trial: Callable[[str], TrialSession | None]) -> list[Route]:
    """The endpoint's routes under ``/trial/{trial}/v1``; ``trial`` finds the session a path
    names (None: that trial is not, or no longer, served: 404)."""

    def session_of(request: Request) -> TrialSession | None:
        return trial(str(request.path_params["trial"]))

    async def completions(request: Request) -> Response:
        session = session_of(request)
        return _no_trial() if session is None else await _completions(session, request)

    async def models(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return _no_trial()
        if not _authorized(session, request):
            return _error(401, "invalid token for this trial", "invalid_api_key")
        return JSONResponse({"object": "list", "data": [
            _model_entry(name) for name in (session.spec.model, model_alias(session.spec.model))]})

    async def responses(request: Request) -> Response:
        session = session_of(request)
        return _no_trial() if session is None else await _responses(session, request)

    return [Route(f"{TRIAL_PREFIX}/v1/chat/completions", completions, methods=["POST"]),
            Route(f"{TRIAL_PREFIX}/v1/responses", responses, methods=["POST"]),
            Route(f"{TRIAL_PREFIX}/v1/models", models, methods=["GET"])]


def _no_trial() -> Response:
    return _error(404, "no such trial (it has ended, or never was)", "trial_not_found")


def model_alias(model: str) -> str:
    """The arm's model id with no ``/`` (``mock/expert`` -> ``mock--expert``)."""
    return model.replace("/", "--")


def serves(session: TrialSession, model: Any) -> bool:
    return model in (session.spec.model, model_alias(session.spec.model))


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


async def _admit(session: TrialSession, request: Request) -> Any:
    """The request's JSON body, or the error ``Response`` that refuses it."""
    if not _authorized(session, request):
        session.rejected["auth"] += 1
        return _error(401, "invalid token for this trial", "invalid_api_key")
    if session.end_reason is not None:
        session.rejected["after_end"] += 1
        return _error(409, "this trial has ended", "trial_ended")
    return await _read_body(request)


def _next_step(session: TrialSession, body: dict[str, Any]) -> int | Response:
    """The step this model call is, or the answer that ends the trial at the step limit."""
    step = session.model_calls + 1
    if step > session.spec.task.task.step_limit:
        session.trace.ended = "step_limit"
        return _ending(session, "step_limit", _error(
            400, f"step limit of {session.spec.task.task.step_limit} model calls reached",
            "step_limit"))
    session.model_calls = step
    session.trace.steps = step
    session.ignored_fields.update(k for k in body if k in IGNORED_FIELDS | IGNORED)
    session.replaced_fields.update(k for k in body if k == "seed")
    return step


async def _completions(session: TrialSession, request: Request) -> Response:
    body = await _admit(session, request)
    if isinstance(body, Response):
        return body
    problem = _check_body(session, body)
    if problem is not None:
        return problem
    assert isinstance(body, dict)
    step = _next_step(session, body)
    if isinstance(step, Response):
        return step
    chat = chat_request(session.spec, body)
    return await answer_chat(session, chat, step, lambda response: (
        _stream_or_json(body, str(body.get("model")), response)))


async def _responses(session: TrialSession, request: Request) -> Response:
    body = await _admit(session, request)
    if isinstance(body, Response):
        return body
    if not isinstance(body, dict):
        session.rejected["bad_request"] += 1
        return _error(400, "the body must be a JSON object", "invalid_request_error")
    try:
        chat_body = to_chat_body(body, session.conversations)
    except Refused as exc:
        session.rejected["unsupported"] += 1
        return _error(400, str(exc), "invalid_request_error")
    problem = _check_body(session, chat_body)
    if problem is not None:
        return problem
    step = _next_step(session, body)
    if isinstance(step, Response):
        return step
    chat = chat_request(session.spec, chat_body)

    def answer(response: ChatResponse) -> Response:
        kept = chat.messages[1:] if body.get("instructions") else chat.messages
        session.conversations[response.response_id] = [*kept, assistant_turn(response)]
        if body.get("stream"):
            return StreamingResponse(responses_sse(stream_events(body, response)),
                                     media_type="text/event-stream")
        return JSONResponse(response_body(body, response))

    return await answer_chat(session, chat, step, answer)


def chat_request(spec: TrialSpec, body: dict[str, Any]) -> ChatRequest:
    """The provider request for a checked chat-completions body."""
    return ChatRequest(
        model=spec.model, messages=body["messages"], tools=list(body.get("tools") or []),
        seed=spec.seed, max_tokens=_max_tokens(spec, body), temperature=_temperature(spec, body),
        tool_choice=body.get("tool_choice") or "auto",
        options={k: body[k] for k in sorted(BEHAVIOUR_FIELDS) if body.get(k) is not None},
    )


def _stream_or_json(body: dict[str, Any], model: str, response: ChatResponse) -> Response:
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_sse(model, response, include_usage),
                                 media_type="text/event-stream")
    return JSONResponse(completion_body(model, response))


async def answer_chat(session: TrialSession, chat: ChatRequest, step: int,
                      answer: Callable[[ChatResponse], Response]) -> Response:
    """Call the provider for one step of the trial; ``answer`` shapes its response."""
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
    return answer(response)


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
    if not serves(session, body.get("model")):
        session.rejected["model"] += 1
        return _error(404, f"this trial serves only the model {session.spec.model!r} (alias "
                      f"{model_alias(session.spec.model)!r})", "model_not_found")
    tools, temperature = body.get("tools"), body.get("temperature")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if (tools is not None and not isinstance(tools, list)) or not _number(temperature, True) \
            or not _number(limit, False):
        session.rejected["bad_request"] += 1
        return _error(400, "tools must be a list, temperature and max_tokens numbers",
                      "invalid_request_error")
    problem = field_problem(body)
    if problem is not None:
        session.rejected["unsupported"] += 1
        return _error(400, problem, "invalid_request_error")
    return None


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
