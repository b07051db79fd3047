"""The client-side rate limiter: never over the declared limit, close to it in throughput."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from provider_support import PRICES, config, provider, request

from gate.config.schema import RateLimit
from gate.providers.base import Attempt
from gate.providers.factory import build_client
from gate.providers.mockserver import MockServer, ServerOptions
from gate.providers.ratelimit import RateLimiter
from gate.providers.testing import EchoBackend, FakeTime


def _grants(limiter: RateLimiter, fake: FakeTime, n: int, tasks: int) -> list[float]:
    times: list[float] = []

    async def worker(k: int) -> None:
        for _ in range(k):
            limiter.release(await limiter.acquire())  # a call that takes no time
            times.append(fake.clock())

    async def go() -> None:
        await asyncio.gather(*(worker(n // tasks) for _ in range(tasks)))

    asyncio.run(go())
    return sorted(times)


def test_sliding_window_never_exceeded_fake_time() -> None:
    fake = FakeTime()
    limiter = RateLimiter(0.0, 5, 60.0, clock=fake.clock, sleep=fake.sleep)
    times = _grants(limiter, fake, 40, 8)
    for i in range(len(times) - 5):
        assert times[i + 5] - times[i] >= 60.0  # any 6 grants span more than the window
    assert times[-1] - times[0] <= 39 * 60.0 / 5 * 1.03  # paced: one grant per 12 s, no slower


def test_min_interval_fake_time() -> None:
    fake = FakeTime()
    limiter = RateLimiter(15.0, clock=fake.clock, sleep=fake.sleep)
    times = _grants(limiter, fake, 12, 4)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 15.0
    assert max(gaps) <= 15.0 * 1.03


def test_unlimited_never_waits() -> None:
    fake = FakeTime()
    _grants(RateLimiter(clock=fake.clock, sleep=fake.sleep), fake, 50, 5)
    assert fake.waits == []


def test_mismatched_pair_rejected() -> None:
    with pytest.raises(ValueError, match="go together"):
        RateLimiter(0.0, 10, None)


def test_real_server_enforcing_the_limit_sees_no_429() -> None:
    """Declared 10 per 2 s against a server enforcing exactly that: 0 throttled, >= 90 %."""
    calls, requests, per_s = 40, 10, 2.0
    attempts: list[Attempt] = []
    options = ServerOptions(enforce_limit=(requests, per_s))
    with MockServer(EchoBackend(), PRICES, seed=1, options=options) as srv:

        async def go() -> float:
            cfg = config(srv.base_url, max_attempts=1, concurrency=8,
                         rate_limit=RateLimit(requests=requests, per_s=per_s))
            async with build_client(cfg) as client:
                prov = provider(cfg, client, real_time=True)
                gate = asyncio.Semaphore(8)

                async def one(i: int) -> None:
                    async with gate:
                        await prov.complete(request(i), attempts.append)

                start = time.monotonic()
                await asyncio.gather(*(one(i) for i in range(calls)))
                return time.monotonic() - start

        elapsed = asyncio.run(go())
        throttled = srv.throttled
        arrivals = sorted(r.ts for r in srv.requests)

    assert throttled == 0
    assert all(a.outcome == "ok" for a in attempts)
    assert len(attempts) == calls
    ideal = (calls - 1) * per_s / requests  # paced grants: one per per_s / requests, no burst
    assert ideal / elapsed >= 0.90, f"throughput {ideal / elapsed:.2%} of the limit"
    for i in range(len(arrivals) - requests):
        assert arrivals[i + requests] - arrivals[i] > per_s * 0.99


def test_long_limiter_waits_are_announced() -> None:
    import httpx
    from provider_support import completion

    client = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json=completion())))
    notices: list[str] = []
    fake = FakeTime()

    async def go() -> None:
        async with client:
            prov = provider(config(rate_limit=RateLimit(min_interval_s=15.0)), client,
                            time=fake, notices=notices)
            for i in range(3):
                await prov.complete(request(i), lambda a: None)

    asyncio.run(go())
    assert len(notices) == 2
    assert notices[0].startswith("testprov: rate limit, next call in 15.")
