"""The wire client apart from its guards: a wire sends one request and classifies one outcome
(no retry, no wait, no price); the guards wrap any wire (here one written in the test, as a new
protocol would be) with the halt, price, budget, retry, rate limit and audit of every attempt."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from provider_support import KEY, MODEL, PRICES, completion, config, provider, request

from gate.errors import CircuitBreakerError, ConfigError, ErrorKind, ProviderError
from gate.providers.base import Attempt, AttemptStart, Usage
from gate.providers.budget import Budget
from gate.providers.chat_wire import ChatWire
from gate.providers.guards import Guards
from gate.providers.redact import Secret, register_secret
from gate.providers.testing import FakeTime
from gate.providers.wire import Answer, BeforeSend, Outcome, WireRequest


class ScriptedWire:
    """A wire of the test's own: each send returns the next scripted outcome."""

    def __init__(self, *outcomes: Outcome[str]) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[WireRequest] = []
        self.started = 0

    async def send(self, request: WireRequest, before_send: BeforeSend | None) -> Outcome[str]:
        if before_send is not None:
            before_send()
            self.started += 1
        self.sent.append(request)
        return self.outcomes.pop(0)


class TwoPhase(list[Attempt]):
    """An audit sink that also hears each attempt before it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[str] = []

    def __call__(self, attempt: Attempt) -> None:
        self.append(attempt)

    def started(self, start: AttemptStart) -> None:
        self.starts.append(start.attempt_id)


def ok(text: str = "answer", rid: str = "resp-1") -> Outcome[str]:
    usage = Usage(prompt_tokens=100, completion_tokens=10)
    return Outcome(None, 200, 0.01, httpx.Headers(), Answer(text, rid, usage, "stop"))


def fail(kind: ErrorKind, status: int, headers: dict[str, str] | None = None) -> Outcome[str]:
    return Outcome(kind, status, 0.01, httpx.Headers(headers or {}), error=f"{kind.value} {KEY}")


def wire_request(max_tokens: int = 10) -> WireRequest:
    return WireRequest(MODEL, b"{}", "sha", prompt_chars=300, max_tokens=max_tokens)


def guards(budget: Budget | None = None, time: FakeTime | None = None,
           notices: list[str] | None = None, **retry: Any) -> Guards:
    fake = time or FakeTime()

    async def fetch(models: list[str]) -> dict[str, Any]:
        if any(m not in PRICES for m in models):
            raise ConfigError.one("gate.yaml", None, "unpriced")
        return {m: PRICES[m] for m in models}

    sink = notices.append if notices is not None else (lambda _: None)
    return Guards("testprov", config(**retry), budget=budget, fetch_prices=fetch, notice=sink,
                  sleep=fake.sleep, clock=fake.clock)


def test_a_new_wire_gets_retries_waits_audit_and_cost() -> None:
    register_secret(KEY)  # as factory.read_api_key does
    fake = FakeTime()
    wire = ScriptedWire(fail(ErrorKind.RATE_LIMITED, 429, {"retry-after": "7"}), ok())
    attempts = TwoPhase()
    budget = Budget(1.0)
    g = guards(budget, fake)
    reply = asyncio.run(g.call(wire, wire_request(), attempts))
    assert reply.answer.payload == "answer"
    assert reply.cost_usd == pytest.approx(100 * 0.000001 + 10 * 0.000002)
    assert [a.outcome for a in attempts] == ["rate_limited", "ok"]
    assert attempts[1].response_id == "resp-1"
    assert KEY not in (attempts[0].error or "")  # the wire's words, redacted by the guards
    assert fake.waits == [7.0]  # retry-after honoured
    assert wire.started == 2  # audit-before-send reached the wire on each attempt
    assert attempts.starts == [a.attempt_id for a in attempts]
    assert budget.spent_usd == pytest.approx(reply.cost_usd)


def test_a_halt_on_one_wire_stops_every_wire_of_the_provider() -> None:
    other = ScriptedWire(ok())
    g = guards()
    with pytest.raises(CircuitBreakerError):
        asyncio.run(g.call(ScriptedWire(fail(ErrorKind.PAYMENT_REQUIRED, 402)), wire_request(),
                           lambda _: None))
    with pytest.raises(CircuitBreakerError):
        asyncio.run(g.call(other, wire_request(), lambda _: None))
    assert other.sent == []  # nothing sent after the halt


def test_the_budget_refuses_before_the_wire_is_called() -> None:
    wire = ScriptedWire(ok())
    with pytest.raises(CircuitBreakerError):
        asyncio.run(guards(Budget(0.0001)).call(wire, wire_request(max_tokens=1000),
                                                lambda _: None))
    assert wire.sent == []


def test_an_unpriced_model_is_refused_before_the_wire_is_called() -> None:
    wire = ScriptedWire(ok())
    unknown = WireRequest("nobody/knows", b"{}", "sha", prompt_chars=3, max_tokens=1)
    with pytest.raises(ConfigError):
        asyncio.run(guards().call(wire, unknown, lambda _: None))
    assert wire.sent == []


def test_retries_exhausted_raise_the_provider_error() -> None:
    wire = ScriptedWire(*[fail(ErrorKind.SERVER_ERROR, 503)] * 3)
    with pytest.raises(ProviderError) as caught:
        asyncio.run(guards(max_attempts=3).call(wire, wire_request(), lambda _: None))
    assert caught.value.kind is ErrorKind.SERVER_ERROR
    assert len(wire.sent) == 3


def test_the_chat_wire_alone_sends_once_and_classifies() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(503, json={"error": {"message": "overloaded"}},
                              headers={"retry-after": "30"})

    async def go() -> Outcome[dict[str, Any]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            wire = ChatWire(config(), client, base_url="http://provider.test/v1",
                            api_key=Secret(KEY))
            return await wire.send(ChatWire.encode(request()), None)

    outcome = asyncio.run(go())
    assert len(seen) == 1  # no retry, no wait: that is the guards' business
    assert json.loads(seen[0].content) == {**request().body(), "usage": {"include": True}}
    assert outcome.kind is ErrorKind.SERVER_ERROR
    assert outcome.error == "overloaded"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"


def test_the_chat_wire_reads_an_answer() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion("gen-9", cost=0.5))

    async def go() -> Outcome[dict[str, Any]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            wire = ChatWire(config(), client, base_url="http://provider.test/v1", api_key=None)
            return await wire.send(ChatWire.encode(request()), None)

    outcome = asyncio.run(go())
    assert outcome.kind is None
    assert outcome.answer is not None
    assert outcome.answer.response_id == "gen-9"
    assert outcome.answer.usage == Usage(10, 5, cost_reported=0.5)


def test_the_assembled_provider_is_the_chat_wire_inside_the_guards() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion("gen-2"))

    async def go() -> tuple[str, int]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            prov = provider(config(), client)
            response = await prov.complete(request(), lambda _: None)
            return response.response_id, prov.guards.stats.calls

    assert asyncio.run(go()) == ("gen-2", 1)
