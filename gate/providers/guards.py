"""The guards around every wire of one provider: halt, price, budget, retry, rate limit, audit.

``Guards.call(wire, request, on_attempt)`` is the only way a wire client is called. One call:

    halted? -> price known? (fetched once, fail closed) -> budget.reserve(projection)
      -> attempts (tenacity, at most retry.max_attempts):
           halted? -> cooldown.wait() -> rate_limiter.acquire() -> wire.send (one attempt)
           -> rate_limiter.release(response headers)
           -> on_attempt(Attempt) -> ok | retry (announced) | raise
      -> budget.settle(actual cost) | budget.release()

HTTP 402 (or an error body with code 402) raises ``CircuitBreakerError`` at once and halts the
provider: every later call raises it too without sending anything, whichever wire it takes.
So does a run of timeouts (``retry.max_consecutive_timeouts``). Retries exhausted (or a
non-retryable kind) raise ``ProviderError``: the engine counts the trial as lost to the provider.

The guards' state (halt, prices, rate limit, cooldown, timeout streak, counters) is the
provider's, shared by all its wires: a chat completion and a Responses call of one provider
count against the same rate limit and stop at the same halt. The sleep, clock and random
source are injected, so tests run instantly and deterministically.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from tenacity import RetryCallState

from gate.config.schema import Price, ProviderConfig
from gate.errors import AttemptFailed, CircuitBreakerError
from gate.providers.base import (
    RETRYABLE,
    Attempt,
    AttemptSink,
    AttemptStart,
    ErrorKind,
    ProviderError,
    TwoPhaseSink,
)
from gate.providers.budget import Budget, tokens_of_chars, worst_case_cost
from gate.providers.classify import parse_retry_after
from gate.providers.pricing import compute_cost
from gate.providers.ratelimit import RateLimiter
from gate.providers.redact import redact
from gate.providers.retry import Cooldown, Notice, Sleep, TimeoutStreak, retrying
from gate.providers.wire import Answer, BeforeSend, Outcome, Wire, WireRequest

logger = logging.getLogger(__name__)

T = TypeVar("T")
FetchPrices = Callable[[list[str]], Awaitable[dict[str, Price]]]

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
class Reply(Generic[T]):
    """A call that succeeded: the wire's answer and what the guards made of it."""

    answer: Answer[T]
    cost_usd: float  # computed from the usage and the price list
    latency_s: float
    http_status: int


def cost_diverges(reported: float | None, computed: float) -> bool:
    """Whether the provider's ``usage.cost`` differs from ours by more than 5 %."""
    if reported is None:
        return False
    return abs(reported - computed) > max(DIVERGENCE_SHARE * abs(computed), DIVERGENCE_FLOOR_USD)


class Guards:
    """One provider's guards; ``call`` wraps any ``Wire`` in them."""

    def __init__(
        self,
        name: str,
        cfg: ProviderConfig,
        *,
        budget: Budget | None,
        fetch_prices: FetchPrices,
        notice: Notice,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.budget = budget
        self.prices: dict[str, Price] = {}
        self.stats = ProviderStats()
        self._fetch_prices = fetch_prices
        self._notice = notice
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._limiter = RateLimiter.from_config(
            cfg.rate_limit, clock=clock, sleep=sleep, on_wait=self._announce_limit
        )
        self._cooldown = Cooldown(name, cfg.retry, notice=notice, sleep=sleep, clock=clock)
        self._timeouts = TimeoutStreak(cfg.retry)
        self._price_lock = asyncio.Lock()

    # --- price: known before the first call, fail closed -----------------------------------

    async def prepare_pricing(self, models: Iterable[str]) -> dict[str, Price]:
        """Price every model (once each); ConfigError before any call if one is unpriced."""
        models = list(models)
        if any(m not in self.prices for m in models):
            async with self._price_lock:
                wanted = sorted({m for m in models if m not in self.prices})
                if wanted:  # else priced by a concurrent call while this one waited
                    self.prices.update(await self._fetch_prices(wanted))
        return {m: self.prices[m] for m in models}

    # --- the call ----------------------------------------------------------------------------

    async def call(self, wire: Wire[T], request: WireRequest, on_attempt: AttemptSink
                   ) -> Reply[T]:
        """Send ``request`` on ``wire`` with every guard; report every attempt to ``on_attempt``."""
        self._check_halt()
        price = self.prices.get(request.model)
        if price is None:  # the engine should have called prepare_pricing; fail closed anyway
            price = (await self.prepare_pricing([request.model]))[request.model]
        projection = worst_case_cost(tokens_of_chars(request.prompt_chars), request.max_tokens,
                                     price)
        reservation = self.budget.reserve(projection) if self.budget else None
        self.stats.calls += 1
        try:
            reply = await self._with_retries(wire, request, price, on_attempt)
        except BaseException:
            if self.budget is not None and reservation is not None:
                self.budget.release(reservation)
            raise
        if self.budget is not None and reservation is not None:
            spent = max(reply.cost_usd, reply.answer.usage.cost_reported or 0.0)
            self.budget.settle(reservation, spent)
        return reply

    async def _with_retries(
        self, wire: Wire[T], request: WireRequest, price: Price, on_attempt: AttemptSink
    ) -> Reply[T]:
        controller = retrying(
            self.cfg.retry, sleep=self._sleep, rng=self._rng, before_sleep=self._announce
        )
        try:
            async for attempt in controller:
                with attempt:
                    number = attempt.retry_state.attempt_number
                    return await self._attempt(wire, number, request, price, on_attempt)
        except AttemptFailed as exc:
            raise ProviderError(
                exc.kind, exc.message, provider=self.name, status=exc.status,
                response_id=exc.response_id, retry_after_s=exc.retry_after_s,
            ) from None
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def _attempt(
        self, wire: Wire[T], number: int, request: WireRequest, price: Price,
        on_attempt: AttemptSink,
    ) -> Reply[T]:
        self._check_halt()
        await self._cooldown.wait()
        ticket = await self._limiter.acquire()
        outcome: Outcome[T] | None = None
        attempt_id = uuid.uuid4().hex
        try:
            self._check_halt()
            hook = _start_hook(on_attempt, attempt_id, number, request.sha256)
            outcome = await wire.send(request, hook)
        finally:
            headers = outcome.headers if outcome is not None else None
            self._limiter.release(ticket, headers, sent=outcome is not None)
        self.stats.attempts += 1
        silence = self._timeouts.outcome(outcome.kind)
        if outcome.answer is not None:
            return self._succeeded(number, request.sha256, outcome, outcome.answer, price,
                                   on_attempt, attempt_id)
        kind = outcome.kind
        if kind is None:
            raise AssertionError("a wire's outcome has neither an answer nor a failure kind")
        failure = _failure(kind, outcome)
        self.stats.failed_attempts[kind.value] += 1
        on_attempt(_failed_attempt(number, request.sha256, failure, outcome, attempt_id))
        if kind is ErrorKind.PAYMENT_REQUIRED:
            self._halt(f"HTTP 402 payment required: {failure.message}")
        if silence is not None:
            self._halt(silence)
        if kind in RETRYABLE:
            self._cooldown.failure()
        raise failure

    def _succeeded(
        self, number: int, sha: str, outcome: Outcome[T], answer: Answer[T], price: Price,
        on_attempt: AttemptSink, attempt_id: str,
    ) -> Reply[T]:
        usage = answer.usage
        cost = compute_cost(
            usage.prompt_tokens, usage.completion_tokens, price, usage.cached_tokens
        )
        extra: dict[str, Any] = {}
        if cost_diverges(usage.cost_reported, cost):
            extra["cost_divergence"] = True
            self.stats.cost_divergences += 1
            logger.warning("%s: usage.cost %s diverges from computed %s (response %s)",
                           self.name, usage.cost_reported, cost, answer.response_id)
        on_attempt(Attempt(
            attempt=number, outcome="ok", request_sha256=sha, http_status=outcome.status,
            response_id=answer.response_id, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens, cost_reported_usd=usage.cost_reported,
            cost_computed_usd=cost, latency_s=outcome.latency_s, extra=extra,
            finish_reason=answer.finish_reason, cached_tokens=usage.cached_tokens,
            attempt_id=attempt_id,
        ))
        self._cooldown.success()
        return Reply(answer, cost, outcome.latency_s, outcome.status or 200)

    def _announce(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        label = exc.label() if isinstance(exc, AttemptFailed) else "failure"
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        message = (
            f"{self.name}: {label}, retry {state.attempt_number + 1}/"
            f"{self.cfg.retry.max_attempts} in {wait:.1f} s"
        )
        logger.info("%s", message)
        self._notice(message)

    def _announce_limit(self, delay: float) -> None:
        if delay >= LONG_WAIT_S:
            self._notice(f"{self.name}: rate limit, next call in {delay:.1f} s")

    def _halt(self, reason: str) -> None:
        if self.stats.halted is None:
            self.stats.halted = reason
            self._notice(f"{self.name}: {reason}; no further calls will be sent")
        raise CircuitBreakerError(reason)

    def _check_halt(self) -> None:
        if self.stats.halted is not None:
            raise CircuitBreakerError(self.stats.halted)


def _failure(kind: ErrorKind, outcome: Outcome[Any]) -> AttemptFailed:
    retry_after = None
    if outcome.headers is not None:
        retry_after = parse_retry_after(outcome.headers.get("retry-after"), time.time())
    return AttemptFailed(
        kind, redact(outcome.error)[:200], status=outcome.status,
        response_id=outcome.response_id, retry_after_s=retry_after,
    )


def _failed_attempt(
    number: int, sha: str, failure: AttemptFailed, outcome: Outcome[Any], attempt_id: str
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
) -> BeforeSend | None:
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
