"""The HTTP request handler behind ``MockServer`` (one thread per connection, keep-alive)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from gate.providers.base import ChatRequest, ProviderError
from gate.providers.pricing import compute_cost

if TYPE_CHECKING:
    from gate.providers.mockserver import MockServer, RequestRecord

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
        route = routes.get(self.path.split("?")[0].rstrip("/"))
        if route is None:
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
        data = [
            {"id": model, "name": model, "pricing": {
                "prompt": _price_str(p.prompt), "completion": _price_str(p.completion),
                "request": _price_str(p.request)}}
            for model, p in sorted(self.mock.prices.items())
        ]
        self._json(200, {"data": data})

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
            request = ChatRequest(
                model=str(body["model"]), messages=list(body["messages"]),
                tools=list(body.get("tools") or []), seed=int(body.get("seed", self.mock.seed)),
                max_tokens=int(body.get("max_tokens", 1024)),
                temperature=float(body.get("temperature", 0.0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            self.mock.note("bad_request", error=type(exc).__name__)
            self._json(400, _error(400, f"invalid request body: {type(exc).__name__}"))
            return None
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
        price = self.mock.prices.get(request.model)
        cost = response.cost_usd if price is None else compute_cost(
            usage.prompt_tokens, usage.completion_tokens, price)
        self.mock.charge(cost)
        finish = "tool_calls" if response.message.get("tool_calls") else "stop"
        self._json(200, {
            "id": self.mock.response_id(record.seq), "object": "chat.completion",
            "created": int(time.time()), "model": request.model, "provider": "gate-mock",
            "choices": [{"index": 0, "message": response.message, "finish_reason": finish}],
            "usage": {"prompt_tokens": usage.prompt_tokens,
                      "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                      "cost": cost * self.mock.options.cost_factor},
        })

    def _authorized(self) -> bool:
        key = self.mock.options.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._json(401, _error(401, "No auth credentials found"))
        return False

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(payload).encode(), headers)

    def _raw(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            elapsed = time.perf_counter() - self._started
            self.send_header("X-Gate-Server-Time", f"{elapsed:.6f}")
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client went away (a stall it timed out on)
