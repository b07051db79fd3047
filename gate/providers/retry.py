"""Retry policy: a pure predicate and a pure backoff, wrapped by tenacity; and the cooldown.

* ``is_retryable(exc)``: only ``AttemptFailed`` of a kind in ``base.RETRYABLE``. 400/401/402/403
  are never retried (402 does not even get here: it halts the run at once).
* ``backoff_s``: ``Retry-After`` when the server sent one, else ``initial_wait_s * 2**(n-1)``;
  plus uniform jitter in ``[0, jitter_s]``; never more than ``max_wait_s``.
* ``Cooldown``: after ``cooldown_after`` consecutive failed attempts, provider-wide (across
  concurrent calls), every call waits ``cooldown_s`` before its next attempt, and says so.

The sleep is injected (tests pass one that returns at once) and so is the random source.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from gate.config.schema import RetryPolicy
from gate.errors import AttemptFailed, ErrorKind
from gate.providers.base import RETRYABLE

Sleep = Callable[[float], Awaitable[None]]
Notice = Callable[[str], None]




def is_retryable(exc: BaseException) -> bool:
    """The retry predicate: a failed attempt of a retryable kind."""
    return isinstance(exc, AttemptFailed) and exc.kind in RETRYABLE


def backoff_s(
    failed_attempt: int, retry_after_s: float | None, policy: RetryPolicy, jitter_s: float
) -> float:
    """Seconds to wait after attempt number ``failed_attempt`` (1-based) failed."""
    if retry_after_s is not None:
        base = retry_after_s
    else:
        base = policy.initial_wait_s * 2 ** (failed_attempt - 1)
    return min(policy.max_wait_s, base + jitter_s)


def retrying(
    policy: RetryPolicy,
    *,
    sleep: Sleep,
    rng: random.Random,
    before_sleep: Callable[[RetryCallState], None],
) -> AsyncRetrying:
    """A tenacity controller for one call: ``policy.max_attempts`` attempts, re-raising the last."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = exc.retry_after_s if isinstance(exc, AttemptFailed) else None
        return backoff_s(state.attempt_number, retry_after, policy, rng.uniform(0, policy.jitter_s))

    return AsyncRetrying(
        sleep=sleep,
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=retry_if_exception(is_retryable),
        before_sleep=before_sleep,
        reraise=True,
    )


class TimeoutStreak:
    """Counts timed-out attempts in a row, provider-wide; any answer ends the streak.

    ``failed(kind)`` returns the halt reason once the streak reaches ``max_consecutive_timeouts``:
    a provider that has stopped answering is not retried forever (circuit breaker)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.limit = policy.max_consecutive_timeouts
        self.count = 0

    def outcome(self, kind: ErrorKind | None) -> str | None:
        """Record one attempt's outcome (None = success); the halt reason when it is time."""
        if kind is not ErrorKind.TIMEOUT:
            self.count = 0
            return None
        self.count += 1
        if self.count >= self.limit:
            return (f"{self.count} consecutive timeouts: the provider stopped answering "
                    f"(retry.max_consecutive_timeouts {self.limit})")
        return None


class Cooldown:
    """Provider-wide pause after too many consecutive failed attempts."""

    def __init__(
        self,
        name: str,
        policy: RetryPolicy,
        *,
        notice: Notice,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.after = policy.cooldown_after
        self.seconds = policy.cooldown_s
        self._notice = notice
        self._sleep = sleep
        self._clock = clock
        self._consecutive = 0
        self._until = float("-inf")
        self.count = 0  # cooldowns so far

    def failure(self) -> None:
        """Count one failed attempt; start a cooldown when the streak is long enough."""
        if self._clock() < self._until:
            return  # failures of attempts already in flight do not extend a running cooldown
        self._consecutive += 1
        if self._consecutive >= self.after and self.seconds > 0:
            self._consecutive = 0
            self._until = self._clock() + self.seconds
            self.count += 1
            self._notice(
                f"{self.name}: {self.after} consecutive failures, "
                f"cooling down {self.seconds:.1f} s"
            )

    def success(self) -> None:
        """A successful attempt ends the streak."""
        self._consecutive = 0

    async def wait(self) -> None:
        """Wait out a running cooldown (returns at once when there is none)."""
        remaining = self._until - self._clock()
        if remaining > 0:
            await self._sleep(remaining)
