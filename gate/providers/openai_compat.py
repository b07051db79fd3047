"""``OpenAICompatProvider``: the real provider path (OpenRouter, any OpenAI-compatible server).

One call (``complete``) goes:

    halted? -> price known? (fetched once, fail closed) -> budget.reserve(projection)
      -> attempts (retry.run_attempts, at most retry.max_attempts):
           halted? -> cooldown.wait() -> rate_limiter.acquire() -> POST /chat/completions
           -> rate_limiter.release(response headers)
           -> classify -> on_attempt(Attempt) -> ok | retry (announced) | raise
      -> budget.settle(actual cost) | budget.release()

HTTP 402 (or an error body with code 402) raises ``CircuitBreakerError`` at once and halts the
provider: every later call raises it too without sending anything. Retries exhausted (or a
non-retryable kind) raise ``ProviderError``: the engine counts the trial as lost to the provider.

The ``httpx.AsyncClient`` is injected (built once per run by ``gate.providers.factory``), and so
are the sleep, clock and random source, so tests run instantly and deterministically.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

from gate.config.schema import Price, ProviderConfig
from gate.errors import AttemptFailed, CircuitBreakerError, ConfigError
from gate.providers.base import (
    RETRYABLE,
    Attempt,
    AttemptSink,
    AttemptStart,
    ChatRequest,
    ChatResponse,
    ErrorKind,
    ProviderError,
    TwoPhaseSink,
    Usage,
)
from gate.providers.budget import Budget, project_cost
from gate.providers.capped import ResponseTooLarge, send_capped
from gate.providers.classify import UNPARSEABLE, classify, error_message, parse_retry_after
from gate.providers.httpjson import endpoint, failure, get_json
from gate.providers.pricing import compute_cost, live_prices, table_prices
from gate.providers.ratelimit import RateLimiter
from gate.providers.redact import Secret, redact
from gate.providers.retry import Cooldown, Notice, Sleep, TimeoutStreak, run_attempts

logger = logging.getLogger(__name__)

DIVERGENCE_SHARE = 0.05  # usage.cost vs computed cost: flagged above 5 % ...
DIVERGENCE_FLOOR_USD = 1e-7  # ... and above a tenth of a micro-dollar (rounding of tiny costs)
LONG_WAIT_S = 5.0  # rate-limit waits at least this long are announced through ``notice``


@dataclass
class ProviderStats:
    """Counters the engine can read at any time (all attempts of this provider)."""

    calls: int = 0
    attempts: int = 0
    failed_attempts: Counter[str] = field(default_factory=Counter)
    cost_divergences: int = 0
    halted: str | None = None


@dataclass(frozen=True)
class _Outcome:
    """What one HTTP exchange produced, before classification."""

    status: int | None
    body: Any
    exc: BaseException | None
    headers: Mapping[str, str] | None  # case-insensitive (capped.CappedResponse)
    latency_s: float


def cost_diverges(reported: float | None, computed: float) -> bool:
    """Whether the provider's ``usage.cost`` differs from ours by more than 5 %."""
    if reported is None:
        return False
    return abs(reported - computed) > max(DIVERGENCE_SHARE * abs(computed), DIVERGENCE_FLOOR_USD)


class OpenAICompatProvider:
    """An OpenAI-compatible chat-completions provider with the gate's safety rails."""

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
        self.prices: dict[str, Price] = {}
        self.stats = ProviderStats()
        self._client = client
        self._key = api_key
        self._notice = notice
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._config_path = config_path
        self._limiter = RateLimiter.from_config(
            cfg.rate_limit, clock=clock, sleep=sleep, on_wait=self._announce_limit
        )
        self._cooldown = Cooldown(name, cfg.retry, notice=notice, sleep=sleep, clock=clock)
        self._timeouts = TimeoutStreak(cfg.retry)
        self._price_lock = asyncio.Lock()
        self._url = endpoint(self.base_url, "chat/completions")  # parsed once, not per call
        self._timeout = httpx.Timeout(cfg.timeout_s, connect=min(cfg.timeout_s, 10.0))

    def __repr__(self) -> str:
        return f"OpenAICompatProvider(name={self.name!r}, base_url={self.base_url!r})"

    # --- before the first call -----------------------------------------------------------

    async def prepare_pricing(self, models: Iterable[str]) -> dict[str, Price]:
        """Price every model (live list or table); ConfigError before any completion call."""
        models = list(models)
        if any(m not in self.prices for m in models):
            async with self._price_lock:
                wanted = sorted({m for m in models if m not in self.prices})
                if not wanted:  # priced by a concurrent call while this one waited
                    found = {}
                elif self.cfg.pricing == "table":
                    found = table_prices(self.name, self.cfg, wanted, config_path=self._config_path)
                else:
                    found = await live_prices(
                        self.name, self._client, self.base_url, wanted,
                        config_path=self._config_path, sleep=self._sleep,
                        headers=self._headers(), max_bytes=self.cfg.max_response_bytes,
                        deadline_s=self.cfg.timeout_s,
                    )
                self.prices.update(found)
        return {m: self.prices[m] for m in models}

    async def fetch_balance(self) -> float | None:
        """Remaining credit from ``GET /key`` (``data.limit_remaining``).

        ``None`` when the key has no limit or the server has no ``/key`` endpoint (404/405).
        A rejected key is a ConfigError; any other failure is a CircuitBreakerError (fail
        closed: the ceiling must not be above a balance the provider could not report).
        """
        url = str(endpoint(self.base_url, "key"))
        try:
            status, body = await get_json(self._client, url, self._headers(), sleep=self._sleep,
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
        """Answer ``request`` with retries; report every attempt to ``on_attempt``."""
        self._check_halt()
        price = self.prices.get(request.model)
        if price is None:  # the engine should have called prepare_pricing; fail closed anyway
            price = (await self.prepare_pricing([request.model]))[request.model]
        reservation = self.budget.reserve(project_cost(request, price)) if self.budget else None
        self.stats.calls += 1
        try:
            response = await self._with_retries(request, price, on_attempt)
        except BaseException:
            if self.budget is not None and reservation is not None:
                self.budget.release(reservation)
            raise
        if self.budget is not None and reservation is not None:
            spent = max(response.cost_usd, response.usage.cost_reported or 0.0)
            self.budget.settle(reservation, spent)
        return response

    async def aclose(self) -> None:
        """No-op: the injected client belongs to whoever built it (``factory.build_client``)."""

    async def _with_retries(
        self, request: ChatRequest, price: Price, on_attempt: AttemptSink
    ) -> ChatResponse:
        body = request.body()
        body["usage"] = {"include": True}  # OpenRouter: report usage.cost
        content = json.dumps(body, separators=(",", ":")).encode()
        sha = request.sha256()
        try:
            return await run_attempts(
                self.cfg.retry, lambda n: self._attempt(n, content, sha, price, on_attempt),
                sleep=self._sleep, rng=self._rng, before_sleep=self._announce)
        except AttemptFailed as exc:
            raise ProviderError(
                exc.kind, exc.message, provider=self.name, status=exc.status,
                response_id=exc.response_id, retry_after_s=exc.retry_after_s,
            ) from None

    async def _attempt(
        self, number: int, content: bytes, sha: str, price: Price, on_attempt: AttemptSink
    ) -> ChatResponse:
        self._check_halt()
        await self._cooldown.wait()
        ticket = await self._limiter.acquire()
        outcome: _Outcome | None = None
        attempt_id = uuid.uuid4().hex
        try:
            self._check_halt()
            outcome = await self._send(content, _start_hook(on_attempt, attempt_id, number, sha))
        finally:
            headers = outcome.headers if outcome is not None else None
            self._limiter.release(ticket, headers, sent=outcome is not None)
        self.stats.attempts += 1
        kind = classify(outcome.status, outcome.body, outcome.exc)
        silence = self._timeouts.outcome(kind)
        if kind is None:
            if outcome.exc is not None:
                raise outcome.exc  # not a transport problem: a bug, never hidden
            return self._succeeded(number, sha, outcome, price, on_attempt, attempt_id)
        failure = self._failed(kind, outcome)
        self.stats.failed_attempts[kind.value] += 1
        on_attempt(_failed_attempt(number, sha, failure, outcome, attempt_id))
        if kind is ErrorKind.PAYMENT_REQUIRED:
            self._halt(f"HTTP 402 payment required: {failure.message}")
        if silence is not None:
            self._halt(silence)
        if kind in RETRYABLE:
            self._cooldown.failure()
        raise failure

    async def _send(self, content: bytes, before_send: Callable[[], None] | None) -> _Outcome:
        start = time.perf_counter()
        try:
            response = await send_capped(
                self._client, "POST", self._url, content=content, headers=self._headers(),
                http_timeout=self._timeout, max_bytes=self.cfg.max_response_bytes,
                deadline_s=self.cfg.timeout_s, before_send=before_send,
            )
        except (httpx.TransportError, ResponseTooLarge) as exc:
            status = exc.status if isinstance(exc, ResponseTooLarge) else None
            return _Outcome(status, None, exc, None, time.perf_counter() - start)
        body = _parse_json(response.content)
        return _Outcome(
            response.status_code, body, None, response.headers, time.perf_counter() - start
        )

    def _succeeded(
        self, number: int, sha: str, outcome: _Outcome, price: Price, on_attempt: AttemptSink,
        attempt_id: str,
    ) -> ChatResponse:
        body = outcome.body
        usage_raw = body["usage"]
        reported = usage_raw.get("cost")
        usage = Usage(
            prompt_tokens=usage_raw["prompt_tokens"],
            completion_tokens=usage_raw["completion_tokens"],
            cost_reported=float(reported) if reported is not None else None,
            cached_tokens=cached_tokens(usage_raw),
        )
        cost = compute_cost(
            usage.prompt_tokens, usage.completion_tokens, price, usage.cached_tokens
        )
        finish = finish_reason(body)
        response_id = body.get("id") if isinstance(body.get("id"), str) else ""
        extra: dict[str, Any] = {}
        if cost_diverges(usage.cost_reported, cost):
            extra["cost_divergence"] = True
            self.stats.cost_divergences += 1
            logger.warning("%s: usage.cost %s diverges from computed %s (response %s)",
                           self.name, usage.cost_reported, cost, response_id)
        on_attempt(Attempt(
            attempt=number, outcome="ok", request_sha256=sha, http_status=outcome.status,
            response_id=response_id, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens, cost_reported_usd=usage.cost_reported,
            cost_computed_usd=cost, latency_s=outcome.latency_s, extra=extra,
            finish_reason=finish, cached_tokens=usage.cached_tokens, attempt_id=attempt_id,
        ))
        self._cooldown.success()
        return ChatResponse(
            response_id=response_id, message=body["choices"][0]["message"], usage=usage,
            cost_usd=cost, latency_s=outcome.latency_s, http_status=outcome.status or 200,
            finish_reason=finish,
        )

    def _failed(self, kind: ErrorKind, outcome: _Outcome) -> AttemptFailed:
        if outcome.exc is not None:
            text = f"{type(outcome.exc).__name__}: {outcome.exc}"
        else:
            text = error_message(outcome.body) or _describe_body(kind, outcome.body)
        retry_after = None
        if outcome.headers is not None:
            retry_after = parse_retry_after(outcome.headers.get("retry-after"), time.time())
        body = outcome.body if isinstance(outcome.body, dict) else {}
        response_id = body.get("id") if isinstance(body.get("id"), str) else None
        return AttemptFailed(
            kind, redact(text)[:200], status=outcome.status, response_id=response_id,
            retry_after_s=retry_after,
        )

    def _announce(self, number: int, failure: AttemptFailed, wait: float) -> None:
        message = (
            f"{self.name}: {failure.label()}, retry {number + 1}/"
            f"{self.cfg.retry.max_attempts} in {wait:.1f} s"
        )
        logger.info("%s", message)
        self._notice(message)

    def _announce_limit(self, delay: float) -> None:
        if delay >= LONG_WAIT_S:
            self._notice(f"{self.name}: rate limit, next call in {delay:.1f} s")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "X-Title": "gate"}
        if self._key is not None:
            header = self.cfg.api_key_header
            bearer = header.lower() == "authorization"
            headers[header] = f"Bearer {self._key.reveal()}" if bearer else self._key.reveal()
        return headers

    def _halt(self, reason: str) -> None:
        if self.stats.halted is None:
            self.stats.halted = reason
            self._notice(f"{self.name}: {reason}; no further calls will be sent")
        raise CircuitBreakerError(reason)

    def _check_halt(self) -> None:
        if self.stats.halted is not None:
            raise CircuitBreakerError(self.stats.halted)


def finish_reason(body: dict[str, Any]) -> str | None:
    """``choices[0].finish_reason`` when it is a string."""
    value = body["choices"][0].get("finish_reason")
    return value if isinstance(value, str) else None


def cached_tokens(usage: dict[str, Any]) -> int:
    """``usage.prompt_tokens_details.cached_tokens`` (0 when absent or not a count)."""
    details = usage.get("prompt_tokens_details")
    value = details.get("cached_tokens") if isinstance(details, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, int(usage["prompt_tokens"]))
    return 0


def _parse_json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return UNPARSEABLE


def _describe_body(kind: ErrorKind, body: Any) -> str:
    if body is UNPARSEABLE:
        return "response body is not JSON"
    if kind is ErrorKind.MALFORMED_RESPONSE:
        return "response lacks choices[0].message or usage"
    if kind is ErrorKind.FINISH_ERROR:
        return "the provider ended the completion with finish_reason 'error'"
    return kind.value.replace("_", " ")


def _failed_attempt(
    number: int, sha: str, failure: AttemptFailed, outcome: _Outcome, attempt_id: str
) -> Attempt:
    return Attempt(
        attempt=number, outcome=failure.kind.value, request_sha256=sha,
        http_status=outcome.status, response_id=failure.response_id,
        latency_s=outcome.latency_s, error=f"{failure.label()}: {failure.message}",
        finish_reason="error" if failure.kind is ErrorKind.FINISH_ERROR else None,
        attempt_id=attempt_id,
    )


def _start_hook(
    sink: AttemptSink, attempt_id: str, number: int, sha: str
) -> Callable[[], None] | None:
    """Audit-before-send: the sink's ``started`` bound to this attempt (None if it has none)."""
    if not callable(getattr(sink, "started", None)):  # isinstance on a Protocol costs ~50 us
        return None
    two_phase = cast(TwoPhaseSink, sink)
    start = AttemptStart(attempt_id, number, sha)
    fired = False

    def hook() -> None:
        nonlocal fired
        if not fired:  # once per attempt, whatever the transport does
            fired = True
            two_phase.started(start)

    return hook
