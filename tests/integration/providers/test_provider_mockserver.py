"""End to end against the loopback MockServer: fault accounting kind by kind, 402, secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from pathlib import Path

import pytest
from provider_support import KEY, KEY_ENV, PRICES, config, provider, request

from gate.config.schema import FaultConfig
from gate.errors import CircuitBreakerError
from gate.providers.base import Attempt, ProviderError
from gate.providers.factory import build_client, build_provider, prepare_pricing
from gate.providers.testing import EchoBackend, FakeTime
from gate.simulate.server import FAULT_ERROR_KIND, MockServer, ServerOptions

ALL_BUT_402 = ["429", "500", "502", "503", "error_in_body", "malformed_json", "stall"]
# a stall outlasts the client's timeout by far; the timeout (which bounds the whole attempt) is
# far above what an answered call takes even on a loaded machine
FAST = ServerOptions(stall_s=60.0, retry_after_s=2.0)


async def _drive(srv: MockServer, calls: int, concurrency: int, attempts: list[Attempt],
                 notices: list[str]) -> Counter[str]:
    """Make ``calls`` calls, ``concurrency`` at a time; count how each ended."""
    # concurrent stalls time out together, in an order the machine's load decides: the halt on
    # timeouts in a row (tested on its own in test_silent_provider) is kept out of this count
    cfg = config(srv.base_url, pricing="live", timeout_s=5.0, concurrency=concurrency,
                 max_consecutive_timeouts=calls)
    ends: Counter[str] = Counter()
    async with build_client(cfg) as client:
        prov = provider(cfg, client, time=FakeTime(), notices=notices)
        await prepare_pricing(prov, PRICES)
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate:
                try:
                    await prov.complete(request(i), attempts.append)
                    ends["ok"] += 1
                except ProviderError as exc:
                    ends[f"lost:{exc.kind.value}"] += 1

        await asyncio.gather(*(one(i) for i in range(calls)))
    return ends


@pytest.mark.slow  # end to end: not in the fast loop
def test_fault_accounting_matches_server_log_kind_by_kind(tmp_path: Path) -> None:
    log = tmp_path / "faults.jsonl"
    faults = FaultConfig(rate=0.2, kinds=ALL_BUT_402)  # type: ignore[arg-type]
    attempts: list[Attempt] = []
    notices: list[str] = []
    with MockServer(EchoBackend(), PRICES, faults, seed=11, fault_log_path=log,
                    options=FAST) as srv:
        ends = asyncio.run(_drive(srv, 200, 8, attempts, notices))
        expected = srv.expected_error_counts()
        injected = srv.fault_counts()
        received = len(srv.requests)

    assert sum(ends.values()) == 200  # every call completed or raised ProviderError
    assert set(injected) == set(ALL_BUT_402)  # every kind was exercised
    client_side = Counter(a.outcome for a in attempts if a.outcome != "ok")
    assert client_side == expected  # kind by kind
    assert sum(expected.values()) >= 30
    assert len(attempts) == received  # one Attempt per request the server saw
    assert sum(1 for a in attempts if a.outcome == "ok") == ends["ok"]
    assert all(a.response_id and a.response_id.startswith("gen-")
               for a in attempts if a.outcome == "ok")
    assert any("retry" in n for n in notices)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    logged = Counter(e["kind"] for e in events if e["event"] == "fault")
    assert logged == injected
    assert sum(1 for e in events if e["event"] == "request") == received


def test_faults_are_deterministic_from_the_seed() -> None:
    faults = FaultConfig(rate=0.3)
    a = MockServer(EchoBackend(), PRICES, faults, seed=5)
    b = MockServer(EchoBackend(), PRICES, faults, seed=5)
    c = MockServer(EchoBackend(), PRICES, faults, seed=6)
    draws = [[s._draw_fault(n) for n in range(1, 200)] for s in (a, b, c)]
    assert draws[0] == draws[1] != draws[2]
    assert set(FAULT_ERROR_KIND) >= {d for d in draws[0] if d}


def test_402_after_n_stops_new_requests() -> None:
    faults = FaultConfig(rate=0.0, payment_required_after=20)
    attempts: list[Attempt] = []
    with MockServer(EchoBackend(), PRICES, faults, seed=3) as srv:

        async def go() -> list[str]:
            cfg = config(srv.base_url, concurrency=4)
            async with build_client(cfg) as client:
                prov = provider(cfg, client)

                async def worker() -> str:
                    for i in range(100):
                        try:
                            await prov.complete(request(i), attempts.append)
                        except CircuitBreakerError as exc:
                            return str(exc)
                    return "never halted"

                reasons = await asyncio.gather(*(worker() for _ in range(4)))
                before = len(srv.requests)
                with pytest.raises(CircuitBreakerError):
                    await prov.complete(request(999), attempts.append)
                assert len(srv.requests) == before  # halted: nothing sent
                return reasons

        reasons = asyncio.run(go())
        after_402 = [r for r in srv.requests if r.seq > 20]

    assert all(r.startswith("HTTP 402 payment required") for r in reasons)
    assert 1 <= len(after_402) <= 4  # only calls already in flight (concurrency 4)
    assert all(r.fault == "402" for r in after_402)
    assert Counter(a.outcome for a in attempts) == {"ok": 20, "payment_required": len(after_402)}


def test_api_key_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    faults = FaultConfig(rate=0.4, kinds=ALL_BUT_402)  # type: ignore[arg-type]
    attempts: list[Attempt] = []
    texts: list[str] = []
    with MockServer(EchoBackend(), PRICES, faults, seed=2,
                    options=ServerOptions(api_key=KEY, stall_s=1.0)) as srv:

        async def go() -> None:
            cfg = config(srv.base_url, pricing="live", timeout_s=0.25, max_attempts=2)
            async with build_client(cfg) as client:
                prov = provider(cfg, client, notices=texts)
                texts.append(repr(prov))
                for i in range(15):
                    try:
                        await prov.complete(request(i), attempts.append)
                    except ProviderError as exc:
                        texts.extend([str(exc), repr(exc)])
                logging.getLogger("gate.providers.openai_compat").warning("key was %s", KEY)

        asyncio.run(go())
        assert srv.fault_counts()  # faults did happen
        assert any(a.outcome == "ok" for a in attempts)  # and the key was accepted

    everything = "\n".join([*texts, caplog.text, *(repr(a) for a in attempts)])
    assert "key was ***" in caplog.text  # the filter is active
    assert KEY not in everything


def test_secret_echoed_by_server_is_redacted() -> None:
    import httpx

    body = {"error": {"code": 401, "message": f"invalid key {KEY}"}}
    client = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda r: httpx.Response(401, json=body)))
    attempts: list[Attempt] = []

    async def go() -> None:
        async with client:
            prov = build_provider("p", config(), client, budget=None, notice=print,
                                  env={KEY_ENV: KEY})
            await prov.complete(request(), attempts.append)

    with pytest.raises(ProviderError) as info:
        asyncio.run(go())
    assert KEY not in str(info.value)
    assert "invalid key ***" in str(info.value)
    assert attempts[0].error is not None
    assert KEY not in attempts[0].error
