"""The wire: one request to a provider, one classified outcome, and no policy.

A wire client (``Wire``) knows one protocol of a provider (``ChatWire``: chat completions;
``ResponsesWire``: OpenAI's Responses API). It encodes a request, hands it to the run's HTTP
client once, reads the answer (capped, with the attempt's deadline), classifies it
(``gate.providers.classify``) and, when it succeeded, reads the usage and the response id out of
it. It never retries, waits, prices, budgets, halts or records: those are the guards
(``gate.providers.guards``), which wrap every wire the same way, as inspect_ai's ``Model`` wraps
a ``ModelAPI`` and pydantic-ai's wrapper models wrap the model that speaks the wire.

A failure of the network or of the provider is an outcome (``Outcome.kind``); any other
exception is a bug in gate and is raised, never classified.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import httpx

from gate.config.schema import ProviderConfig
from gate.errors import ErrorKind
from gate.providers.base import Usage
from gate.providers.capped import ResponseTooLarge, send_capped
from gate.providers.classify import UNPARSEABLE, error_message
from gate.providers.httpjson import endpoint
from gate.providers.redact import Secret

T = TypeVar("T")

BeforeSend = Callable[[], None]
"""Called once, synchronously, right before the request is handed to the transport (the
audit's ``started`` line)."""


@dataclass(frozen=True)
class WireRequest:
    """One request, encoded once for all its attempts, with what the budget projects from it."""

    model: str
    content: bytes  # the JSON body sent
    sha256: str  # of the request as gate built it (the audit's ``request_sha256``)
    prompt_chars: int  # length of the request's JSON as gate built it (the budget's estimate)
    max_tokens: int  # the most completion tokens the request allows


@dataclass(frozen=True)
class Answer(Generic[T]):
    """A successful outcome: what the guards account for, and the wire's own reading of it."""

    payload: T  # chat: the assistant message; Responses: the whole response object
    response_id: str
    usage: Usage
    finish_reason: str | None


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """One attempt's result, classified: ``answer`` when ``kind`` is None, else ``error``."""

    kind: ErrorKind | None
    status: int | None
    latency_s: float
    headers: httpx.Headers | None  # None when no answer came (the network failed)
    answer: Answer[T] | None = None
    error: str = ""  # what went wrong, unredacted and unshortened (the guards do both)
    response_id: str | None = None  # of a failed answer that carried one


class Wire(Protocol[T]):
    """A wire client: ``send`` one encoded request and classify what came back."""

    async def send(self, request: WireRequest, before_send: BeforeSend | None
                   ) -> Outcome[T]: ...


@dataclass(frozen=True)
class Exchange:
    """What one HTTP exchange produced, before classification."""

    status: int | None
    body: Any  # parsed JSON, ``UNPARSEABLE``, or None when no answer came
    exc: BaseException | None
    headers: httpx.Headers | None
    latency_s: float


class HttpPost:
    """``POST`` JSON to one path under a provider's ``base_url``: its key, cap and deadline."""

    def __init__(self, cfg: ProviderConfig, client: httpx.AsyncClient, base_url: str, path: str,
                 api_key: Secret | None) -> None:
        self._cfg = cfg
        self._client = client
        self._key = api_key
        self.url = endpoint(base_url.rstrip("/"), path)  # parsed once, not per call
        self._timeout = httpx.Timeout(cfg.timeout_s, connect=min(cfg.timeout_s, 10.0))

    async def __call__(self, content: bytes, before_send: BeforeSend | None) -> Exchange:
        start = time.perf_counter()
        try:
            response = await send_capped(
                self._client, "POST", self.url, content=content,
                headers=auth_headers(self._cfg, self._key), http_timeout=self._timeout,
                max_bytes=self._cfg.max_response_bytes, deadline_s=self._cfg.timeout_s,
                before_send=before_send,
            )
        except (httpx.TransportError, ResponseTooLarge) as exc:
            status = exc.status if isinstance(exc, ResponseTooLarge) else None
            return Exchange(status, None, exc, None, time.perf_counter() - start)
        body = parse_json(response.content)
        return Exchange(response.status_code, body, None, response.headers,
                        time.perf_counter() - start)


def auth_headers(cfg: ProviderConfig, key: Secret | None) -> dict[str, str]:
    """The headers of every request to the provider: JSON, gate's title, the key."""
    headers = {"Content-Type": "application/json", "X-Title": "gate"}
    if key is not None:
        header = cfg.api_key_header
        bearer = header.lower() == "authorization"
        headers[header] = f"Bearer {key.reveal()}" if bearer else key.reveal()
    return headers


def failed(kind: ErrorKind, exchange: Exchange, describe: Callable[[ErrorKind, Any], str]
           ) -> Outcome[Any]:
    """The outcome of a failed exchange: the exception, else the provider's own message, else
    ``describe(kind, body)`` (the wire's words for a body it could not use)."""
    if exchange.exc is not None:
        text = f"{type(exchange.exc).__name__}: {exchange.exc}"
    else:
        text = error_message(exchange.body) or describe(kind, exchange.body)
    body = exchange.body if isinstance(exchange.body, dict) else {}
    response_id = body.get("id") if isinstance(body.get("id"), str) else None
    return Outcome(kind, exchange.status, exchange.latency_s, exchange.headers, error=text,
                   response_id=response_id)


def parse_json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return UNPARSEABLE


def describe_body(kind: ErrorKind, body: Any) -> str:
    """Words for a failed body that carried no message of its own (any wire)."""
    if body is UNPARSEABLE:
        return "response body is not JSON"
    return kind.value.replace("_", " ")
