"""The limiter's schedule, on fake time: what the server counts by arrival time never exceeds
the declared limit, whatever the latencies, while the limit is used; grants are paced; the
provider's own rate-limit headers stop grants until their time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random

import pytest

from gate.providers.ratelimit import RateLimiter, parse_reset
from gate.providers.testing import FakeTime

WALL = 1_700_000_000.0  # the fake wall clock (Unix time) for reset headers


def _limiter(fake: FakeTime, requests: int | None = 10, per_s: float | None = 10.0,
             min_interval_s: float = 0.0) -> RateLimiter:
    return RateLimiter(min_interval_s, requests, per_s, clock=fake.clock, sleep=fake.sleep,
                       wall=lambda: WALL + fake.now)


def _simulate(seed: int, calls: int, concurrency: int, slow_share: float) -> tuple[
        list[float], float]:
    """Discrete-event run: each request reaches the server at a random moment between its
    grant and its response (latency 10-200 ms, or 1-3 s for ``slow_share`` of them: a busy
    CPU, a slow network). Returns the arrival times and the share of the limit used."""
    fake = FakeTime(now=0.0)
    limiter = _limiter(fake)
    rng = random.Random(seed)
    releases: list[tuple[float, int]] = []
    arrivals: list[float] = []

    async def run() -> None:
        while len(arrivals) < calls:
            free = limiter.next_free()
            must_wait = limiter.in_flight >= concurrency or free is None
            if releases and (must_wait or releases[0][0] <= max(free or 0.0, fake.now)):
                when, ticket = heapq.heappop(releases)
                fake.now = max(fake.now, when)
                limiter.release(ticket)
                continue
            ticket = await limiter.acquire()
            slow = rng.random() < slow_share
            latency = rng.uniform(1.0, 3.0) if slow else rng.uniform(0.01, 0.2)
            arrivals.append(fake.now + rng.random() * latency)
            heapq.heappush(releases, (fake.now + latency, ticket))

    asyncio.run(run())
    arrivals.sort()
    used = calls / (10 * (arrivals[-1] - arrivals[0]) / 10.0 + 10)
    return arrivals, used


def _worst_window(arrivals: list[float], per_s: float) -> int:
    worst, start = 0, 0
    for end, t in enumerate(arrivals):
        while arrivals[start] <= t - per_s:
            start += 1
        worst = max(worst, end - start + 1)
    return worst


@pytest.mark.parametrize("seed", range(5))
def test_the_server_never_counts_more_than_the_limit_and_the_limit_is_used(seed: int) -> None:
    arrivals, used = _simulate(seed, calls=400, concurrency=16, slow_share=0.0)
    assert _worst_window(arrivals, 10.0) <= 10
    assert used >= 0.95, f"used {used:.1%} of the limit"


@pytest.mark.parametrize("seed", range(3))
def test_slow_sends_never_push_arrivals_over_the_limit(seed: int) -> None:
    arrivals, _ = _simulate(seed, calls=300, concurrency=32, slow_share=0.2)
    assert _worst_window(arrivals, 10.0) <= 10


def test_grants_are_paced_not_bursts_at_the_window_edge() -> None:
    fake = FakeTime(now=0.0)
    limiter = _limiter(fake)
    times: list[float] = []

    async def go() -> None:
        for _ in range(25):
            limiter.release(await limiter.acquire())
            times.append(fake.now)

    asyncio.run(go())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0  # per_s / requests: never a burst
    assert max(gaps) <= 1.0 + 0.05 + 1e-9  # at most the safety margin more, once a window


def test_a_window_full_of_requests_in_flight_waits_for_a_response() -> None:
    fake = FakeTime(now=0.0)
    limiter = _limiter(fake, requests=3, per_s=10.0)

    async def go() -> tuple[bool, float]:
        tickets = [await limiter.acquire() for _ in range(3)]
        late = asyncio.ensure_future(limiter.acquire())
        for _ in range(20):
            await asyncio.sleep(0)
        waited = not late.done()
        fake.now = 50.0  # the first response arrives long after
        limiter.release(tickets[0])
        await late
        return waited, fake.now

    waited, granted = asyncio.run(go())
    assert waited
    assert granted >= 60.0  # a window after that response, not after its grant


def test_remaining_zero_stops_grants_until_the_reset_epoch_ms() -> None:
    fake = FakeTime(now=0.0)
    limiter = _limiter(fake, requests=100, per_s=10.0)

    async def go() -> float:
        ticket = await limiter.acquire()
        reset_ms = (WALL + fake.now + 30.0) * 1000
        limiter.release(ticket, {"X-RateLimit-Remaining": "0",
                                 "X-RateLimit-Reset": f"{reset_ms:.0f}"})
        await limiter.acquire()
        return fake.now

    assert asyncio.run(go()) >= 30.0


@pytest.mark.parametrize(("headers", "wait"), [
    ({"retry-after": "7"}, 7.0),
    ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s"}, 90.0),
    ({"x-ratelimit-remaining": "5", "x-ratelimit-reset": "100"}, 0.0),
])
def test_the_providers_own_headers_are_honoured(headers: dict[str, str], wait: float) -> None:
    fake = FakeTime(now=0.0)
    limiter = _limiter(fake, requests=100, per_s=100.0)

    async def go() -> float:
        limiter.release(await limiter.acquire(), headers)
        start = fake.now
        await limiter.acquire()
        return fake.now - start

    waited = asyncio.run(go())
    assert waited >= wait
    assert waited <= max(wait, 1.0) * 1.05 + 0.1


@pytest.mark.parametrize(("value", "seconds"), [
    ("20ms", 0.02), ("1s", 1.0), ("6m0s", 360.0), ("1h", 3600.0), ("2.5", 2.5),
    (f"{(WALL + 12) * 1000:.0f}", 12.0), (f"{WALL + 12:.0f}", 12.0), ("soon", None),
    ("-3", None), (None, None),
])
def test_parse_reset(value: str | None, seconds: float | None) -> None:
    got = parse_reset(value, WALL)
    assert got == (None if seconds is None else pytest.approx(seconds))


def test_a_request_never_sent_does_not_hold_the_window() -> None:
    fake = FakeTime(now=0.0)
    limiter = _limiter(fake, requests=1, per_s=10.0)

    async def go() -> float:
        limiter.release(await limiter.acquire(), sent=False)
        await limiter.acquire()
        return fake.now

    assert asyncio.run(go()) <= 10.0 * 1.03  # paced only, not a window after a send


def test_late_wake_ups_do_not_push_the_schedule_back() -> None:
    fake = FakeTime(now=0.0)

    async def oversleep(seconds: float) -> None:
        await fake.sleep(seconds + 0.3)  # a busy CPU wakes every waiter 0.3 s late

    limiter = RateLimiter(0.0, 10, 10.0, clock=fake.clock, sleep=oversleep)
    times: list[float] = []

    async def go() -> None:
        for _ in range(25):
            limiter.release(await limiter.acquire())
            times.append(fake.now)

    asyncio.run(go())
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    assert gaps[len(gaps) // 2] == pytest.approx(1.0)  # on schedule, not 1.3 apart
    assert times[-1] < 24 * 1.3 * 0.85
