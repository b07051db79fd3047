"""A client-side rate limiter shared by every concurrent call to one provider.

``RateLimiter(min_interval_s, requests, per_s)`` keeps the calls within ``requests`` per sliding
window of ``per_s`` seconds as the *server* counts them, by arrival time, and never grants two
calls closer than ``min_interval_s``. Use::

    ticket = await limiter.acquire()
    ... send the request, read the response ...
    limiter.release(ticket, response_headers)

Why it holds whatever the network and the CPU do: a request reaches the server somewhere
between its grant and the moment its response is read. So a request occupies the window from
its grant until ``per_s`` after its response was read (while in flight, indefinitely), and a
grant is made only while fewer than ``requests`` requests occupy it. Any ``requests + 1``
arrivals within ``per_s`` of each other would need the last of them to be granted while the
other ``requests`` still occupied the window, which is never done. A send delayed by a busy
CPU or a slow network only makes the accounting more cautious, never wrong. The cost: each
request holds its place for its latency longer, so a window of ``per_s`` is used at about
``per_s / (per_s + latency)`` of its capacity (99 % at 60 s and 0.5 s latency).

Grants are paced, never in bursts at the edge of a window: two grants are at least
``per_s / requests`` apart (or ``min_interval_s`` if larger), each at a time computed from the
window, not woken all at once. Waiters are served first come, first served.

The provider's own word is honoured: ``retry-after`` (on a 429), and ``x-ratelimit-remaining``
at 0 with ``x-ratelimit-reset`` (OpenRouter: epoch milliseconds; OpenAI's ``-requests``
variants: a duration such as ``1s`` or ``6m0s``) stop every grant until then.

A small safety margin (``safety_s``, by default 2 % of the window, at most 50 ms) covers clock
granularity and the server's own rounding. Clocks and sleep are injectable: tests run without
waiting (``gate.providers.testing.FakeTime``).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from gate.config.schema import RateLimit
from gate.providers.classify import parse_retry_after

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str | None, wall_now: float) -> float | None:
    """Seconds until a ``x-ratelimit-reset`` time: epoch ms or s, seconds, or ``1m30s``-style."""
    if value is None:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            return None
        return sum(float(n) * _UNIT_S[u] for n, u in parts)
    if not math.isfinite(number) or number < 0:
        return None
    if number > 1e11:  # epoch milliseconds
        return max(0.0, number / 1000.0 - wall_now)
    if number > 1e9:  # epoch seconds
        return max(0.0, number - wall_now)
    return number


class RateLimiter:
    """Arrival-safe sliding window, pacing and minimum interval: see the module docstring."""

    def __init__(
        self,
        min_interval_s: float = 0.0,
        requests: int | None = None,
        per_s: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall: Clock = time.time,
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
        self._wall = wall
        window = per_s if per_s is not None else min_interval_s
        self._safety = min(0.05, 0.02 * window) if safety_s is None else safety_s
        pace = per_s / requests if per_s is not None and requests else 0.0
        # the window is guarded by its own accounting: pacing needs no margin, an interval does
        interval = min_interval_s + self._safety if min_interval_s > 0 else 0.0
        self._spacing = max(pace, interval)
        self._last_grant: float | None = None
        self._in_flight: set[int] = set()
        self._ends: list[float] = []  # sorted: when released requests stop occupying the window
        self._blocked_until = float("-inf")  # the provider said: nothing before this
        self._tickets = itertools.count(1)
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()
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

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def next_free(self) -> float | None:
        """The earliest clock time of the next grant; None while requests in flight fill the
        window (the next grant then waits for a ``release``)."""
        now = self._clock()
        del self._ends[:bisect.bisect_right(self._ends, now)]
        earliest = self._blocked_until
        if self._last_grant is not None and self._spacing > 0:
            earliest = max(earliest, self._last_grant + self._spacing)
        if self.requests is not None:
            excess = len(self._in_flight) + len(self._ends) - self.requests
            if excess >= 0:
                if excess >= len(self._ends):
                    return None
                earliest = max(earliest, self._ends[excess])
        return earliest

    async def acquire(self) -> int:
        """Wait until a call may be sent; returns the ticket to ``release`` when it is done."""
        if self.unlimited:
            return 0
        async with self._lock:
            while True:
                earliest = self.next_free()
                if earliest is None:
                    self._released.clear()
                    await self._released.wait()
                    continue
                delay = earliest - self._clock()
                if delay <= 0:
                    break
                if self._on_wait is not None:
                    self._on_wait(delay)
                await self._sleep(delay)
            # Pacing is anchored on the schedule, so a late wake-up (a busy CPU) does not push
            # every later grant back; a wake-up later than half a step re-anchors on now. A
            # declared minimum interval is never shortened.
            late = self._clock() - earliest
            catch_up = 0.0 if self.min_interval_s > 0 else self._spacing / 2
            self._last_grant = earliest if 0 <= late < catch_up else max(self._clock(), earliest)
            ticket = next(self._tickets)
            self._in_flight.add(ticket)
            return ticket

    def release(
        self, ticket: int, headers: Mapping[str, str] | None = None, *, sent: bool = True
    ) -> None:
        """The call of ``ticket`` is over (its response read, or it failed). ``headers``: the
        response's, for the provider's own limit; ``sent=False``: it never left the client."""
        if ticket not in self._in_flight:
            return
        self._in_flight.discard(ticket)
        now = self._clock()
        if sent and self.per_s is not None:
            bisect.insort(self._ends, now + self.per_s + self._safety)
        if headers is not None:
            self.observe(headers, now)
        self._released.set()

    def observe(self, headers: Mapping[str, str], now: float | None = None) -> None:
        """Stop granting until the provider's ``retry-after`` or rate-limit reset, if it sent
        one (header names in any case)."""
        now = self._clock() if now is None else now
        lower = {k.lower(): v for k, v in headers.items()}
        wait = parse_retry_after(lower.get("retry-after"), self._wall())
        remaining = lower.get("x-ratelimit-remaining-requests", lower.get("x-ratelimit-remaining"))
        if remaining is not None and remaining.strip() in ("0", "0.0"):
            reset = lower.get("x-ratelimit-reset-requests", lower.get("x-ratelimit-reset"))
            until_reset = parse_reset(reset, self._wall())
            if until_reset is not None:
                wait = max(wait or 0.0, until_reset)
        if wait is not None and wait > 0:
            self._blocked_until = max(self._blocked_until, now + wait + self._safety)

