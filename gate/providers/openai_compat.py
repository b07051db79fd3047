"""``OpenAICompatProvider``: the real provider path (OpenRouter, any OpenAI-compatible server).

It is assembled from two parts (gate.providers.wire, gate.providers.guards):

    complete(request)  ->  Guards.call(ChatWire, ChatWire.encode(request))  ->  ChatResponse
                           (without gate's own fields the provider declares unsupported)
    respond(request)   ->  Guards.call(ResponsesWire, ...)   ->  ResponsesResult
                           (only when gate.yaml declares ``responses_api: true``)

- the **wire clients** ``ChatWire`` and ``ResponsesWire`` send one request and classify what
  came back; nothing else;
- the **guards** (halt, price, budget, retry, cooldown, rate limit, audit of every attempt)
  wrap it, and would wrap any other wire of the provider the same way.

This class adds what is particular to an OpenAI-compatible provider around those: its prices
(``GET /models`` or the config's table) and its remaining balance (``GET /key``).

The ``httpx.AsyncClient`` is injected (built once per run by ``gate.providers.factory``), and so
are the sleep, clock and random source, so tests run instantly and deterministically.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

import httpx

from gate.config.schema import Price, ProviderConfig
from gate.errors import CircuitBreakerError, ConfigError
from gate.providers.base import (
    AttemptSink,
    Capabilities,
    ChatRequest,
    ChatResponse,
    ResponsesRequest,
    ResponsesResult,
    withheld_fields,
)
from gate.providers.budget import Budget
from gate.providers.chat_wire import ChatWire
from gate.providers.guards import Guards, ProviderStats
from gate.providers.httpjson import endpoint, failure, get_json
from gate.providers.pricing import live_prices, table_prices
from gate.providers.redact import Secret
from gate.providers.responses_wire import ResponsesWire
from gate.providers.retry import Notice, Sleep
from gate.providers.wire import auth_headers


class OpenAICompatProvider:
    """An OpenAI-compatible chat-completions provider: ``ChatWire`` inside gate's ``Guards``."""

    def __init__(
        self,
        name: str,
        cfg: ProviderConfig,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: Secret | None,
        budget: Budget | None,
        notice: Notice,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        config_path: str = "gate.yaml",
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self._client = client
        self._key = api_key
        self._sleep = sleep
        self._config_path = config_path
        self.guards = Guards(name, cfg, budget=budget, fetch_prices=self._fetch_prices,
                             notice=notice, sleep=sleep, clock=clock, rng=rng)
        self.chat = ChatWire(cfg, client, base_url=self.base_url, api_key=api_key)
        self.responses = ResponsesWire(cfg, client, base_url=self.base_url, api_key=api_key)
        self.capabilities = Capabilities(
            responses_api=cfg.responses_api,
            unsupported={"chat_completions": frozenset(cfg.unsupported_fields.chat_completions),
                         "responses": frozenset(cfg.unsupported_fields.responses)})
        self.withheld = withheld_fields(cfg.unsupported_fields.chat_completions)
        """gate's own fields left out of every chat completion (``ChatRequest.withheld``)."""

    def __repr__(self) -> str:
        return f"OpenAICompatProvider(name={self.name!r}, base_url={self.base_url!r})"

    @property
    def prices(self) -> dict[str, Price]:
        return self.guards.prices

    @property
    def stats(self) -> ProviderStats:
        return self.guards.stats

    # --- before the first call -----------------------------------------------------------

    async def prepare_pricing(self, models: Iterable[str]) -> dict[str, Price]:
        """Price every model (live list or table); ConfigError before any completion call."""
        return await self.guards.prepare_pricing(models)

    async def _fetch_prices(self, wanted: list[str]) -> dict[str, Price]:
        if self.cfg.pricing == "table":
            return table_prices(self.name, self.cfg, wanted, config_path=self._config_path)
        return await live_prices(
            self.name, self._client, self.base_url, wanted,
            config_path=self._config_path, sleep=self._sleep,
            headers=auth_headers(self.cfg, self._key), max_bytes=self.cfg.max_response_bytes,
            deadline_s=self.cfg.timeout_s,
        )

    async def fetch_balance(self) -> float | None:
        """Remaining credit from ``GET /key`` (``data.limit_remaining``).

        ``None`` when the key has no limit or the server has no ``/key`` endpoint (404/405).
        A rejected key is a ConfigError; any other failure is a CircuitBreakerError (fail
        closed: the ceiling must not be above a balance the provider could not report).
        """
        url = str(endpoint(self.base_url, "key"))
        try:
            status, body = await get_json(self._client, url, auth_headers(self.cfg, self._key),
                                          sleep=self._sleep,
                                          max_bytes=self.cfg.max_response_bytes,
                                          deadline_s=self.cfg.timeout_s)
        except httpx.HTTPError as exc:
            raise CircuitBreakerError(
                f"{self.name}: cannot read the remaining balance GET {url} ({failure(exc)})"
            ) from None
        if status in (401, 403):
            raise ConfigError.one(self._config_path, None, (
                f"provider {self.name!r}: the provider refused the key: HTTP {status} on GET "
                f"{url} (the key in {self.cfg.api_key_env})"))
        if status in (404, 405):
            return None
        data = body.get("data") if isinstance(body, dict) else None
        if status != 200 or not isinstance(data, dict):
            raise CircuitBreakerError(
                f"{self.name}: cannot read the remaining balance (GET {url}: HTTP {status})"
            )
        remaining = data.get("limit_remaining")
        if isinstance(remaining, int | float) and not isinstance(remaining, bool):
            return float(remaining)
        return None

    # --- the call ------------------------------------------------------------------------

    async def complete(self, request: ChatRequest, on_attempt: AttemptSink) -> ChatResponse:
        """Answer ``request`` through the guards; report every attempt to ``on_attempt``.
        gate's own fields the provider declares unsupported are left out (``withheld``)."""
        if not self.withheld <= request.withheld:
            request = replace(request, withheld=request.withheld | self.withheld)
        reply = await self.guards.call(self.chat, ChatWire.encode(request), on_attempt)
        answer = reply.answer
        return ChatResponse(
            response_id=answer.response_id, message=answer.payload, usage=answer.usage,
            cost_usd=reply.cost_usd, latency_s=reply.latency_s, http_status=reply.http_status,
            finish_reason=answer.finish_reason,
        )

    async def respond(self, request: ResponsesRequest, on_attempt: AttemptSink
                      ) -> ResponsesResult:
        """Forward a Responses API request through the same guards as ``complete``."""
        if not self.capabilities.responses_api:
            raise ConfigError.one(self._config_path, None, (
                f"provider {self.name!r} does not declare responses_api: true"))
        reply = await self.guards.call(self.responses, ResponsesWire.encode(request),
                                       on_attempt)
        answer = reply.answer
        return ResponsesResult(
            response_id=answer.response_id, body=answer.payload, usage=answer.usage,
            cost_usd=reply.cost_usd, latency_s=reply.latency_s, http_status=reply.http_status,
            finish_reason=answer.finish_reason,
        )

    async def aclose(self) -> None:
        """No-op: the injected client belongs to whoever built it (``factory.build_client``)."""
