"""A client-side rate limiter shared by every concurrent call to one provider.

``RateLimiter(min_interval_s, requests, per_s)`` grants at most ``requests`` calls in any
sliding window of ``per_s`` seconds, and never two calls closer than ``min_interval_s``.
Waiters are served first come, first served (one lock, held while waiting), so the declared limit
is never exceeded however many trials run at once: the gate never causes a 429 itself.

A small safety margin (``safety_s``, by default 2% of the window, at most 50 ms) covers the
time between a grant and the request's arrival at the server, which jitters with the network.
Clock and sleep are injectable so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from gate.config.schema import RateLimit

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class RateLimiter:
    """Sliding-window plus minimum-interval limiter; ``await limiter.acquire()`` before a call."""

    def __init__(
        self,
        min_interval_s: float = 0.0,
        requests: int | None = None,
        per_s: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        safety_s: float | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        if (requests is None) != (per_s is None):
            raise ValueError("requests and per_s go together")
        self.min_interval_s = min_interval_s
        self.requests = requests
        self.per_s = per_s
        self._clock = clock
        self._sleep = sleep
        window = per_s if per_s is not None else min_interval_s
        self._safety = min(0.05, 0.02 * window) if safety_s is None else safety_s
        self._grants: deque[float] = deque(maxlen=requests or 1)
        self._lock = asyncio.Lock()
        self._on_wait = on_wait

    @classmethod
    def from_config(
        cls,
        limit: RateLimit,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_wait: Callable[[float], None] | None = None,
    ) -> RateLimiter:
        """Build the limiter a provider's ``rate_limit`` declares."""
        return cls(limit.min_interval_s, limit.requests, limit.per_s, clock=clock, sleep=sleep,
                   on_wait=on_wait)

    @property
    def unlimited(self) -> bool:
        return self.min_interval_s <= 0 and self.requests is None

    def next_free(self) -> float:
        """The earliest clock time at which the next call may be granted."""
        earliest = float("-inf")
        if self._grants and self.min_interval_s > 0:
            earliest = self._grants[-1] + self.min_interval_s + self._safety
        full = self.requests is not None and len(self._grants) >= self.requests
        if full and self.per_s is not None:
            earliest = max(earliest, self._grants[0] + self.per_s + self._safety)
        return earliest

    async def acquire(self) -> None:
        """Wait until a call is allowed, then record it as granted."""
        if self.unlimited:
            return
        async with self._lock:
            earliest = self.next_free()
            delay = earliest - self._clock()
            if delay > 0:
                if self._on_wait is not None:
                    self._on_wait(delay)
                await self._sleep(delay)
            # A sleep may wake a hair early; the grant is booked no earlier than allowed.
            self._grants.append(max(self._clock(), earliest))
