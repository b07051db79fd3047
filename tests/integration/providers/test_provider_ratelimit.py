"""The client-side rate limiter: never over the declared limit, close to it in throughput."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest
from provider_support import KEY, KEY_ENV, PRICES, config, provider, request

from gate.config.schema import RateLimit
from gate.providers.base import Attempt
from gate.providers.factory import build_client, build_provider
from gate.providers.ratelimit import RateLimiter
from gate.providers.testing import EchoBackend, FakeTime
from gate.simulate.server import MockServer, ServerOptions


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


class _LockstepTime:
    """A clock shared by the limiter and the server that advances only in the limiter's sleeps,
    and only once the server has admitted every request already granted. So a request reaches
    the server at the instant it was granted, however slow the machine: the server sees exactly
    the limiter's grants, and the test depends on no timing."""

    def __init__(self, server: MockServer) -> None:
        self.now = 1000.0
        self.sent = 0
        self.granted = 0
        self.server = server
        self.arrivals: list[float] = []

    def clock(self) -> float:
        return self.now

    def server_clock(self) -> float:  # called once per admitted request, under the server lock
        self.arrivals.append(self.now)
        return self.now

    async def on_request(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            self.sent += 1

    def count_grants(self, limiter: RateLimiter) -> None:
        """Count the limiter's grants, so ``sleep`` knows how many requests must have arrived."""
        acquire = limiter.acquire

        async def counted() -> int:
            ticket = await acquire()
            self.granted += 1
            return ticket

        limiter.acquire = counted  # type: ignore[method-assign]

    async def sleep(self, seconds: float) -> None:
        # every granted call reaches the client's request hook (a new connection may take any
        # number of loop turns), then the server, which admits on its own threads: poll in real
        # time (only "eventually" matters)
        while self.sent < self.granted or len(self.server.requests) < self.sent:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        self.now += max(0.0, seconds)


def test_real_server_enforcing_the_limit_sees_no_429() -> None:
    """Declared 10 per 2 s against a server enforcing exactly that: 0 throttled, and no slower
    than the limit needs (in the shared clock, so the machine's load cannot change either)."""
    calls, requests, per_s = 40, 10, 2.0
    attempts: list[Attempt] = []
    srv = MockServer(EchoBackend(), PRICES, seed=1)
    lockstep = _LockstepTime(srv)
    srv.options = ServerOptions(enforce_limit=(requests, per_s), clock=lockstep.server_clock)
    with srv:

        async def go() -> None:
            cfg = config(srv.base_url, max_attempts=1, concurrency=8,
                         rate_limit=RateLimit(requests=requests, per_s=per_s))
            async with build_client(cfg) as client:
                client.event_hooks = {"request": [lockstep.on_request], "response": []}
                prov = build_provider("testprov", cfg, client, budget=None, notice=lambda _: None,
                                      sleep=lockstep.sleep, clock=lockstep.clock,
                                      env={KEY_ENV: KEY})
                lockstep.count_grants(prov.guards._limiter)
                gate = asyncio.Semaphore(8)

                async def one(i: int) -> None:
                    async with gate:
                        await prov.complete(request(i), attempts.append)

                await asyncio.gather(*(one(i) for i in range(calls)))

        asyncio.run(go())
        throttled = srv.throttled

    assert throttled == 0
    assert all(a.outcome == "ok" for a in attempts)
    assert len(attempts) == calls
    arrivals = lockstep.arrivals
    assert len(arrivals) == calls
    for i in range(len(arrivals) - requests):
        assert arrivals[i + requests] - arrivals[i] >= per_s  # the limit as the server saw it
    ideal = (calls - 1) * per_s / requests  # paced grants: one per per_s / requests, no burst
    span = arrivals[-1] - arrivals[0]
    # each paced grant also carries the safety margin (2 % of the window), hence the 1.2;
    # in the shared clock the span is the same on any machine (real-time figures: bench/)
    assert ideal <= span <= ideal * 1.2, f"{span} s for {calls} calls (ideal {ideal} s)"


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
