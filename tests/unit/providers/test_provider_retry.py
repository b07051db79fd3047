"""Retries, Retry-After, the cap, 402, non-retryable kinds and the cooldown (no real waits)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from provider_support import completion, config, failed, provider, request, scripted

from gate.errors import CircuitBreakerError
from gate.providers.base import Attempt, ErrorKind, ProviderError
from gate.providers.testing import FakeTime

R429 = httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"code": 429}})
R500 = httpx.Response(500, json={"error": {"code": 500, "message": "boom"}})
OK = httpx.Response(200, json=completion())


def test_retries_then_succeeds_and_reports_every_attempt() -> None:
    client, seen = scripted(R500, R429, OK)
    attempts: list[Attempt] = []
    notices: list[str] = []

    async def go() -> None:
        async with client:
            resp = await provider(config(), client, notices=notices).complete(
                request(), attempts.append)
            assert resp.response_id == "gen-1"
            assert resp.cost_usd == pytest.approx(10 * 0.000001 + 5 * 0.000002)

    asyncio.run(go())
    assert len(seen) == 3
    assert [a.outcome for a in attempts] == ["server_error", "rate_limited", "ok"]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert attempts[1].http_status == 429
    assert attempts[2].response_id == "gen-1"
    assert notices[:2] == ["testprov: server_error (500), retry 2/5 in 0.0 s",
                           "testprov: rate_limited (429), retry 3/5 in 7.0 s"]
    sent = json.loads(seen[0].content)
    assert sent["usage"] == {"include": True}
    assert sent["model"] == "mock/expert"
    assert seen[0].headers["authorization"].startswith("Bearer ")


def test_retry_after_honoured_and_capped() -> None:
    time = FakeTime()
    big = httpx.Response(429, headers={"Retry-After": "500"}, json={})
    client, _ = scripted(R429, big, R500, OK)

    async def go() -> None:
        async with client:
            cfg = config(initial_wait_s=1.0, max_wait_s=60.0)
            await provider(cfg, client, time=time).complete(request(), lambda a: None)

    asyncio.run(go())
    assert time.waits == [7.0, 60.0, 4.0]  # Retry-After, capped Retry-After, 1*2**2


def test_gives_up_after_max_attempts_with_provider_error() -> None:
    client, seen = scripted(R500)
    attempts: list[Attempt] = []

    async def go() -> None:
        async with client:
            await provider(config(max_attempts=4), client).complete(request(), attempts.append)

    with pytest.raises(ProviderError) as info:
        asyncio.run(go())
    assert info.value.kind is ErrorKind.SERVER_ERROR
    assert info.value.status == 500
    assert info.value.provider == "testprov"
    assert len(seen) == 4
    assert failed(attempts) == {"server_error": 4}


@pytest.mark.parametrize(("status", "kind"), [(400, "bad_request"), (401, "auth"),
                                              (403, "auth"), (404, "bad_request")])
def test_client_errors_not_retried(status: int, kind: str) -> None:
    client, seen = scripted(httpx.Response(status, json={"error": {"message": "no"}}), OK)
    attempts: list[Attempt] = []

    async def go() -> None:
        async with client:
            await provider(config(), client).complete(request(), attempts.append)

    with pytest.raises(ProviderError) as info:
        asyncio.run(go())
    assert info.value.kind.value == kind
    assert len(seen) == 1
    assert failed(attempts) == {kind: 1}


@pytest.mark.parametrize("body_402", [False, True])
def test_402_not_retried_and_halts(body_402: bool) -> None:
    r402 = (httpx.Response(200, json={"error": {"code": 402, "message": "Insufficient credits"}})
            if body_402 else
            httpx.Response(402, json={"error": {"code": 402, "message": "Insufficient credits"}}))
    client, seen = scripted(r402, OK)
    attempts: list[Attempt] = []
    notices: list[str] = []

    async def go() -> None:
        async with client:
            prov = provider(config(), client, notices=notices)
            with pytest.raises(CircuitBreakerError) as info:
                await prov.complete(request(), attempts.append)
            assert str(info.value) == "HTTP 402 payment required: Insufficient credits"
            with pytest.raises(CircuitBreakerError):  # halted: nothing more is sent
                await prov.complete(request(1), attempts.append)
            assert prov.stats.halted is not None

    asyncio.run(go())
    assert len(seen) == 1
    assert [a.outcome for a in attempts] == ["payment_required"]
    assert any("no further calls" in n for n in notices)


def test_transport_errors_are_classified_and_retried() -> None:
    req = httpx.Request("POST", "http://provider.test/v1/chat/completions")
    client, _seen = scripted(httpx.ConnectError("refused", request=req),
                            httpx.ReadTimeout("slow", request=req), OK)
    attempts: list[Attempt] = []

    async def go() -> None:
        async with client:
            await provider(config(), client).complete(request(), attempts.append)

    asyncio.run(go())
    assert [a.outcome for a in attempts] == ["connection_error", "timeout", "ok"]
    assert attempts[0].http_status is None
    assert attempts[0].error is not None


def test_cooldown_after_three_consecutive_failures() -> None:
    time = FakeTime()
    client, _ = scripted(R500, R500, R500, OK)
    notices: list[str] = []

    async def go() -> None:
        async with client:
            cfg = config(cooldown_after=3, cooldown_s=60.0)
            await provider(cfg, client, time=time, notices=notices).complete(
                request(), lambda a: None)

    asyncio.run(go())
    assert "testprov: 3 consecutive failures, cooling down 60.0 s" in notices
    assert 60.0 in time.waits
    assert sum(1 for n in notices if "cooling down" in n) == 1


def test_cooldown_is_provider_wide() -> None:
    """Failures of different concurrent calls add up; every call then waits the cooldown."""
    time = FakeTime()
    client, seen = scripted(R500, R500, R500, OK)
    notices: list[str] = []

    async def go() -> None:
        async with client:
            cfg = config(cooldown_after=3, cooldown_s=60.0, max_attempts=1)
            prov = provider(cfg, client, time=time, notices=notices)
            for i in range(3):  # three calls, one failed attempt each
                with pytest.raises(ProviderError):
                    await prov.complete(request(i), lambda a: None)
            before = time.now
            await prov.complete(request(9), lambda a: None)
            assert time.now - before == pytest.approx(60.0)

    asyncio.run(go())
    assert len(seen) == 4
    assert any("cooling down" in n for n in notices)


def test_cost_divergence_flagged() -> None:
    client, _ = scripted(httpx.Response(200, json=completion(cost=3 * 0.00002)))
    attempts: list[Attempt] = []

    async def go() -> None:
        async with client:
            prov = provider(config(), client)
            await prov.complete(request(), attempts.append)
            assert prov.stats.cost_divergences == 1

    asyncio.run(go())
    assert attempts[0].extra == {"cost_divergence": True}
    assert attempts[0].cost_reported_usd == pytest.approx(0.00006)
    assert attempts[0].cost_computed_usd == pytest.approx(0.00002)
