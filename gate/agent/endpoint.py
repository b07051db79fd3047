"""The recording OpenAI-compatible endpoint an agent program talks to during one trial.

Each ``POST /v1/chat/completions`` (and ``POST /v1/responses``: forwarded natively to a
provider that declares ``responses_api``, else translated by gate.agent.responses_api) is
checked (the trial's bearer token, the arm's model, the step limit) and then answered by
calling the *same* ``Provider`` object the built-in loop uses, so it gets what the loop's calls
get: exact-id pricing, the budget projection, the rate limit, retries, and one audit line per
attempt with the provider's response id.

What is forwarded: ``messages``, ``tools``, ``tool_choice`` (checked against the tools),
``temperature`` (default ``run.temperature``), ``max_tokens``/``max_completion_tokens`` (capped at
``run.max_tokens``, the figure the budget projection uses), and every field of
``BEHAVIOUR_FIELDS`` as given (``response_format`` checked first): a provider that does not
support one refuses the request itself, unless gate.yaml declares it in the provider's
``unsupported_fields``: then gate refuses it first with OpenAI's 400 (``unsupported_parameter``)
and sends nothing. The seed is the trial's (the pairing of the paired
design); a program's own ``seed`` is recorded as replaced. A call that carries no seed (native
Responses: the API has none; a provider declaring ``seed`` unsupported) is counted in
``unseeded_calls``. Fields that cannot change the answer
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
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gate.agent.chat_api import (
    IGNORED_FIELDS,
    chat_request,
    completion_body,
    field_problem,
    number_ok,
)
from gate.agent.chat_api import sse as chat_sse
from gate.agent.loop import TrialSpec, TrialTrace
from gate.agent.responses_api import (
    IGNORED,
    Refused,
    assistant_turn,
    chat_view,
    events_of,
    input_view,
    native_problem,
    response_body,
    stream_events,
    to_chat_body,
)
from gate.agent.responses_api import sse as responses_sse
from gate.environments.base import Environment
from gate.errors import HaltError
from gate.providers.base import (
    Attempt,
    AttemptStart,
    ChatRequest,
    ChatResponse,
    Provider,
    ProviderError,
    ResponsesProvider,
    ResponsesRequest,
    capabilities,
)

T = TypeVar("T")
AuditSink = Callable[[int, Attempt], None]  # (step, attempt) -> the engine's audit writer
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
    unseeded_calls: int = 0
    """Model calls sent without the trial's seed: native Responses calls (the API has no
    ``seed``), and chat completions to a provider that declares ``seed`` unsupported."""
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


def _next_step(session: TrialSession, body: dict[str, Any], *, forwarded: bool = False
               ) -> int | Response:
    """The step this model call is, or the answer that ends the trial at the step limit.
    ``forwarded``: the body goes to the provider as it is (nothing of it is ignored)."""
    step = session.model_calls + 1
    if step > session.spec.task.task.step_limit:
        session.trace.ended = "step_limit"
        return _ending(session, "step_limit", _error(
            400, f"step limit of {session.spec.task.task.step_limit} model calls reached",
            "step_limit"))
    session.model_calls = step
    session.trace.steps = step
    if not forwarded:
        session.ignored_fields.update(k for k in body if k in IGNORED_FIELDS | IGNORED)
        session.replaced_fields.update(k for k in body if k == "seed")
    return step


def _declared_refusal(session: TrialSession, api: str, body: dict[str, Any]
                      ) -> Response | None:
    """A field the provider declares it does not support (gate.yaml ``unsupported_fields``),
    refused as OpenAI refuses one: HTTP 400, ``unsupported_parameter``; nothing is sent."""
    declared = capabilities(session.provider).unsupported.get(api, frozenset())
    key = next((k for k in body if k in declared), None)
    if key is None:
        return None
    session.rejected["unsupported"] += 1
    return JSONResponse({"error": {
        "message": f"Unsupported parameter: '{key}' is not supported with this model.",
        "type": "invalid_request_error", "param": key, "code": "unsupported_parameter"}},
        status_code=400)


async def _completions(session: TrialSession, request: Request) -> Response:
    body = await _admit(session, request)
    if isinstance(body, Response):
        return body
    problem = _check_body(session, body) or _declared_refusal(session, "chat_completions", body)
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
    if capabilities(session.provider).responses_api:
        return await _native_responses(session, body)
    try:
        chat_body = to_chat_body(body, session.conversations)
    except Refused as exc:
        session.rejected["unsupported"] += 1
        return _error(400, str(exc), "invalid_request_error")
    problem = _check_body(session, chat_body) \
        or _declared_refusal(session, "chat_completions", chat_body)
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


async def _native_responses(session: TrialSession, body: dict[str, Any]) -> Response:
    """Forward a Responses request to a provider that speaks it, through the same guards."""
    if not serves(session, body.get("model")):
        session.rejected["model"] += 1
        return _error(404, f"this trial serves only the model {session.spec.model!r} (alias "
                      f"{model_alias(session.spec.model)!r})", "model_not_found")
    refused = _declared_refusal(session, "responses", body)
    if refused is not None:
        return refused
    problem = native_problem(body, session.conversations)
    if problem is not None:
        session.rejected["unsupported"] += 1
        return _error(400, problem, "invalid_request_error")
    step = _next_step(session, body, forwarded=True)
    if isinstance(step, Response):
        return step
    session.unseeded_calls += 1  # the Responses API has no seed
    request = native_request(session, body)
    messages = input_view(body, session.conversations)
    session.trace.transcript.request(step, messages)
    provider = cast(ResponsesProvider, session.provider)
    result = await _provider_call(session, step, lambda sink: provider.respond(request, sink))
    if isinstance(result, Response):
        return result
    view = chat_view(result)
    _answered(session, view)
    kept = messages[1:] if body.get("instructions") else messages
    session.conversations[result.response_id] = [*kept, assistant_turn(view)]
    if body.get("stream"):
        return StreamingResponse(responses_sse(events_of(result.body)),
                                 media_type="text/event-stream")
    return JSONResponse(result.body)


def native_request(session: TrialSession, body: dict[str, Any]) -> ResponsesRequest:
    """The body sent to the provider: the program's, with the arm's model id, never streamed
    (gate streams the complete answer), ``max_output_tokens`` capped at ``run.max_tokens`` and
    ``temperature`` defaulting to ``run.temperature`` (unless the provider refuses it)."""
    spec = session.spec
    asked = body.get("max_output_tokens")
    limit = spec.max_tokens if asked is None else min(int(asked), spec.max_tokens)
    sent = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    sent.update(model=spec.model, max_output_tokens=limit)
    declared = capabilities(session.provider).unsupported.get("responses", frozenset())
    if sent.get("temperature") is None and "temperature" not in declared:
        sent["temperature"] = spec.temperature
    return ResponsesRequest(spec.model, sent, limit)


def _stream_or_json(body: dict[str, Any], model: str, response: ChatResponse) -> Response:
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(chat_sse(model, response, include_usage),
                                 media_type="text/event-stream")
    return JSONResponse(completion_body(model, response))


async def answer_chat(session: TrialSession, chat: ChatRequest, step: int,
                      answer: Callable[[ChatResponse], Response]) -> Response:
    """Call the provider for one step of the trial; ``answer`` shapes its response."""
    session.trace.transcript.request(step, chat.messages)  # the trial's transcript
    if "seed" in capabilities(session.provider).unsupported.get("chat_completions", ()):
        session.unseeded_calls += 1  # the provider leaves the seed out (ChatRequest.withheld)
    response = await _provider_call(session, step,
                                    lambda sink: session.provider.complete(chat, sink))
    if isinstance(response, Response):
        return response
    _answered(session, response)
    return answer(response)


async def _provider_call(session: TrialSession, step: int,
                         call: Callable[[_StepSink], Awaitable[T]]) -> T | Response:
    """The provider's answer, or the error response that ends the trial."""
    try:
        return await call(_StepSink(session.audit, step))
    except HaltError as exc:
        return _ending(session, exc, _error(402, f"gate halted the run: {exc.reason}", "halted"))
    except ProviderError as exc:
        status = exc.status if exc.status is not None and exc.status >= 400 else 502
        return _ending(session, exc, _error(status, str(exc), exc.kind.value))
    except Exception as exc:  # a bug: end the trial, the adapter re-raises it
        return _ending(session, exc, _error(500, "internal error in gate's endpoint",
                                            "internal_error"))


def _answered(session: TrialSession, response: ChatResponse) -> None:
    session.trace.transcript.answer(response.message, response.response_id,
                                    response.finish_reason)
    _record(session, response)


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
    if (tools is not None and not isinstance(tools, list)) or not number_ok(temperature, True) \
            or not number_ok(limit, False):
        session.rejected["bad_request"] += 1
        return _error(400, "tools must be a list, temperature and max_tokens numbers",
                      "invalid_request_error")
    problem = field_problem(body)
    if problem is not None:
        session.rejected["unsupported"] += 1
        return _error(400, problem, "invalid_request_error")
    return None


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
