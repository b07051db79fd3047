"""The HTTP request handler behind ``MockServer`` (one thread per connection, keep-alive)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from gate.providers import sse
from gate.providers.base import (
    BEHAVIOUR_FIELDS,
    ChatRequest,
    ProviderError,
    response_format_problem,
    tool_choice_problem,
)
from gate.providers.pricing import compute_cost

if TYPE_CHECKING:
    from gate.simulate.server import MockServer, RequestRecord

logger = logging.getLogger(__name__)

_FAULT_STATUS = {"402": 402, "429": 429, "500": 500, "502": 502, "503": 503}
_FAULT_MESSAGE = {
    "402": "Insufficient credits. Add more using https://openrouter.ai/credits",
    "429": "Rate limit exceeded: too many requests",
    "500": "Internal server error",
    "502": "Provider returned error: upstream model is down",
    "503": "No available provider could serve the request",
    "error_in_body": "Upstream provider error after generation started",
}


def _error(code: int, message: str, **metadata: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "metadata": metadata}}


def _price_str(value: float) -> str:
    return format(Decimal(repr(value)), "f")


class Handler(BaseHTTPRequestHandler):
    """Routes ``/v1/...`` requests to the MockServer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "gate-mock/1"

    @property
    def mock(self) -> MockServer:
        return self.server.mock  # type: ignore[attr-defined,no-any-return]

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:  # type: ignore[attr-defined]
            self.server.connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        with self.server.conn_lock:  # type: ignore[attr-defined]
            self.server.connections.discard(self.connection)  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("mock server: " + format, *args)

    # --- routing -------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._started = time.perf_counter()
        routes = {"/v1/models": self._models, "/v1/key": self._key, "/v1/credits": self._credits}
        path = self.path.split("?")[0].rstrip("/")
        route = routes.get(path)
        if route is None and path.startswith("/v1/models/"):
            self._model(unquote(path.removeprefix("/v1/models/")))  # the SDK sends mock%2Fexpert
        elif route is None:
            self._json(404, _error(404, f"no route {self.path}"))
        else:
            route()

    def do_POST(self) -> None:
        self._started = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, _error(404, f"no route {self.path}"))
        elif self._authorized():
            self._completion(body)

    # --- endpoints -----------------------------------------------------------------------

    def _models(self) -> None:
        data = [self._model_item(model) for model in sorted(self.mock.prices)]
        self._json(200, {"object": "list", "data": data})

    def _model(self, model: str) -> None:
        if model in self.mock.prices:
            self._json(200, self._model_item(model))
        else:
            self._json(404, _error(404, f"model {model!r} not found"))

    def _model_item(self, model: str) -> dict[str, Any]:
        """OpenAI's model object (id, object, created, owned_by) plus OpenRouter's prices."""
        p = self.mock.prices[model]
        pricing = {"prompt": _price_str(p.prompt), "completion": _price_str(p.completion),
                   "request": _price_str(p.request)}
        if p.cache_read is not None:
            pricing["input_cache_read"] = _price_str(p.cache_read)
        return {"id": model, "object": "model", "created": self.mock.created,
                "owned_by": "gate-mock", "name": model, "pricing": pricing}

    def _key(self) -> None:
        if not self._authorized():
            return
        remaining = self.mock.options.limit_remaining
        spent = self.mock.spent_usd
        limit = None if remaining is None else remaining + spent
        self._json(200, {"data": {"label": "gate-mock", "usage": spent, "limit": limit,
                                  "limit_remaining": remaining, "is_free_tier": False}})

    def _credits(self) -> None:
        if not self._authorized():
            return
        remaining = self.mock.options.limit_remaining
        spent = self.mock.spent_usd
        total = 1000.0 if remaining is None else remaining + spent
        self._json(200, {"data": {"total_credits": total, "total_usage": spent}})

    def _completion(self, raw: bytes) -> None:
        request = self._chat_request(raw)
        if request is None:
            return
        self._stream = bool(self._body.get("stream"))
        options = self._body.get("stream_options")
        self._include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        record = self.mock.admit(request.model)
        if record.throttled:
            self._json(429, _error(429, "rate limit enforced by the mock server"),
                       {"Retry-After": "1"})
        elif record.fault is not None:
            self._fault(record)
        else:
            self._answer(request, record)

    # --- pieces --------------------------------------------------------------------------

    def _chat_request(self, raw: bytes) -> ChatRequest | None:
        try:
            body = json.loads(raw)
            tools = list(body.get("tools") or [])
            max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 1024))
            request = ChatRequest(
                model=str(body["model"]), messages=list(body["messages"]),
                tools=tools, seed=int(body.get("seed", self.mock.seed)),
                max_tokens=int(max_tokens), temperature=float(body.get("temperature", 0.0)),
                tool_choice=body.get("tool_choice") or "auto",
                options={k: v for k, v in body.items() if k in BEHAVIOUR_FIELDS},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.mock.note("bad_request", error=type(exc).__name__)
            self._json(400, _error(400, f"invalid request body: {type(exc).__name__}"))
            return None
        problem = tool_choice_problem(body.get("tool_choice"), tools) \
            or response_format_problem(body.get("response_format"))
        if problem is not None:
            self.mock.note("bad_request", error=problem)
            self._json(400, _error(400, problem))
            return None
        self._body: dict[str, Any] = body
        return request

    def _fault(self, record: RequestRecord) -> None:
        fault = record.fault or ""
        if fault in _FAULT_STATUS:
            status = _FAULT_STATUS[fault]
            headers = {}
            if fault == "429":
                headers["Retry-After"] = f"{self.mock.options.retry_after_s:g}"
            meta = {"limit_source": "key"} if fault == "402" else {}
            self._json(status, _error(status, _FAULT_MESSAGE[fault], **meta), headers)
        elif fault == "error_in_body":
            body = {"id": self.mock.response_id(record.seq),
                    **_error(502, _FAULT_MESSAGE[fault], provider_name="mock")}
            if self._stream:
                self._raw(200, sse.encode([body]), content_type="text/event-stream")
            else:
                self._json(200, body)
        elif fault == "malformed_json":
            self._raw(200, b'{"id": "gen-truncated", "choices": [{"message": {"role": "assis')
        else:  # stall: keep the client waiting past its timeout, then give up
            self.mock.stopping.wait(self.mock.options.stall_s)
            self._json(504, _error(504, "stalled"))

    def _answer(self, request: ChatRequest, record: RequestRecord) -> None:
        latency = self.mock.options.latency_s
        if latency > 0:
            time.sleep(latency)
        try:
            response = self.mock.answer(request)
        except ProviderError as exc:
            self.mock.note("backend_error", seq=record.seq, error=str(exc))
            self._json(400, _error(400, str(exc)))
            return
        usage = response.usage
        message, finish = _honour_none(response.message, request.tool_choice), None
        if usage.completion_tokens > request.max_tokens:  # cut at max_tokens, as providers do
            excess = usage.completion_tokens - request.max_tokens
            message, finish = cut_message(message, excess), "length"
            usage = replace(usage, completion_tokens=request.max_tokens)
        price = self.mock.prices.get(request.model)
        cost = response.cost_usd if price is None else compute_cost(
            usage.prompt_tokens, usage.completion_tokens, price)
        self.mock.charge(cost)
        finish = finish or ("tool_calls" if message.get("tool_calls") else "stop")
        completion = {
            "id": self.mock.response_id(record.seq), "object": "chat.completion",
            "created": int(time.time()), "model": request.model, "provider": "gate-mock",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": usage.prompt_tokens,
                      "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                      "cost": cost * self.mock.options.cost_factor},
        }
        if self._stream:
            chunks = sse.chunks_of(completion, include_usage=self._include_usage)
            self._raw(200, sse.encode(chunks), content_type="text/event-stream")
        else:
            self._json(200, completion)

    def _authorized(self) -> bool:
        key = self.mock.options.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._json(401, _error(401, "No auth credentials found"))
        return False

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(payload).encode(), headers)

    def _raw(
        self, status: int, payload: bytes, headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            elapsed = time.perf_counter() - self._started
            self.send_header("X-Gate-Server-Time", f"{elapsed:.6f}")
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client went away (a stall it timed out on)


def _honour_none(message: dict[str, Any], tool_choice: Any) -> dict[str, Any]:
    """``tool_choice: "none"`` holds whatever the backend answered: no tool calls go out."""
    if tool_choice != "none" or not message.get("tool_calls"):
        return message
    out = {k: v for k, v in message.items() if k != "tool_calls"}
    out["content"] = out.get("content") or ""
    return out


CHARS_PER_TOKEN = 4  # the simulated models' token count: characters / 4


def cut_message(message: dict[str, Any], excess_tokens: int) -> dict[str, Any]:
    """What a provider sends when the answer is ``excess_tokens`` over ``max_tokens``: the text
    and the first tool call's arguments lose their end (a cut call's arguments are not JSON)."""
    chars = max(1, excess_tokens) * CHARS_PER_TOKEN
    out = dict(message)
    if isinstance(out.get("content"), str):
        out["content"] = out["content"][:max(0, len(out["content"]) - chars)]
    calls = out.get("tool_calls") or []
    if calls:
        first = calls[0]
        fn = dict(first.get("function") or {})
        arguments = str(fn.get("arguments") or "")
        fn["arguments"] = arguments[:max(0, len(arguments) - chars)]
        out["tool_calls"] = [{**first, "function": fn}]
    return out
