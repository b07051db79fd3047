"""Live/table pricing (fail closed), the budget breaker, the provider balance, the API key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from provider_support import KEY, KEY_ENV, PRICES, config, provider, request

from gate.config.schema import Price, ProviderConfig
from gate.errors import CircuitBreakerError, ConfigError
from gate.providers.budget import Budget, estimate_prompt_tokens, project_cost
from gate.providers.factory import build_client, build_provider, fetch_balance, prepare_pricing
from gate.providers.testing import EchoBackend
from gate.simulate.server import MockServer, ServerOptions

OPUS = {"anthropic/claude-opus-4": Price(prompt=0.000015, completion=0.000075)}


@pytest.fixture
def opus_server() -> Iterator[MockServer]:
    with MockServer(EchoBackend(), OPUS, seed=1,
                    options=ServerOptions(api_key=KEY, limit_remaining=1.5)) as srv:
        yield srv


def test_unknown_model_in_live_list_fails_closed(opus_server: MockServer) -> None:
    async def go() -> None:
        cfg = config(opus_server.base_url, pricing="live")
        async with build_client(cfg) as client:
            prov = provider(cfg, client)
            with pytest.raises(ConfigError) as info:
                await prepare_pricing(prov, ["anthropic/claude-opus-4.6"])
            assert "'anthropic/claude-opus-4.6' is not listed" in str(info.value)
            assert "listed: anthropic/claude-opus-4" in str(info.value)
            # complete() prices lazily and fails the same way, still before sending anything
            with pytest.raises(ConfigError):
                await prov.complete(request(model="anthropic/claude-opus-4.6"), lambda a: None)

    asyncio.run(go())
    assert opus_server.requests == []  # zero completion requests reached the server


def test_exact_model_in_live_list_is_priced(opus_server: MockServer) -> None:
    async def go() -> None:
        cfg = config(opus_server.base_url, pricing="live")
        async with build_client(cfg) as client:
            prov = provider(cfg, client)
            prices = await prepare_pricing(prov, ["anthropic/claude-opus-4"])
            assert prices == OPUS
            resp = await prov.complete(request(model="anthropic/claude-opus-4"), lambda a: None)
            expected = (resp.usage.prompt_tokens * 0.000015
                        + resp.usage.completion_tokens * 0.000075)
            assert resp.cost_usd == pytest.approx(expected)
            assert resp.usage.cost_reported == pytest.approx(expected)

    asyncio.run(go())


@pytest.mark.parametrize(
    ("pricing", "problem"),
    [({"id": "m", "pricing": {"prompt": "-1", "completion": "0.1"}},
      r"variable prompt price \(-1: the provider prices this model per request\)"),
     ({"id": "m", "pricing": {"prompt": "-2", "completion": "0.1"}}, "no numeric prompt price"),
     ({"id": "m", "pricing": {"prompt": "0.1"}}, "no numeric completion price"),
     ({"id": "m", "pricing": {"prompt": "x", "completion": "0.1"}}, "no numeric prompt price"),
     ({"id": "m"}, "listed without prices")],
)
def test_unpriced_listing_entries(pricing: dict[str, object], problem: str) -> None:
    from gate.providers.pricing import prices_from_listing

    with pytest.raises(ConfigError, match=problem):
        prices_from_listing("p", {"data": [pricing]}, ["m"], url="u")


def test_table_pricing_requires_exact_entry() -> None:
    cfg = config(pricing="table")
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)))

    async def go() -> None:
        async with client:
            prov = provider(cfg, client)
            assert await prepare_pricing(prov, ["mock/expert"]) == PRICES
            with pytest.raises(ConfigError, match=r"has no entry for 'mock/expert@0\.8'"):
                await prepare_pricing(prov, ["mock/expert@0.8"])

    asyncio.run(go())


def test_missing_api_key_is_config_error() -> None:
    cfg = config()

    async def go() -> None:
        async with build_client(cfg) as client:
            with pytest.raises(ConfigError, match=f"environment variable {KEY_ENV}"):
                build_provider("p", cfg, client, budget=None, notice=print, env={})

    asyncio.run(go())


def test_budget_refuses_the_call_that_would_cross() -> None:
    price = Price(prompt=0.001, completion=0.001)
    cfg = ProviderConfig(type="openai", base_url="http://x/v1", api_key_env=KEY_ENV,
                         pricing="table", prices={"m": price})
    with MockServer(EchoBackend(), {"m": price}, seed=1) as srv:
        budget = Budget(0.5)
        projection = project_cost(request(model="m", max_tokens=100), price)
        assert projection == pytest.approx(
            (estimate_prompt_tokens(request(model="m", max_tokens=100)) + 100) * 0.001)

        async def go() -> tuple[int, str]:
            async with build_client(cfg) as client:
                prov = build_provider("p", cfg, client, budget=budget, notice=print,
                                      env={KEY_ENV: KEY}, base_url=srv.base_url)
                done = 0
                try:
                    for i in range(100):
                        await prov.complete(request(i, model="m", max_tokens=100), lambda a: None)
                        done += 1
                except CircuitBreakerError as exc:
                    return done, str(exc)
                return done, "the ceiling was never reached"

        done, reason = asyncio.run(go())
    assert reason.startswith("budget ceiling $0.5000 would be exceeded: spent $")
    assert done >= 1
    assert len(srv.requests) == done  # the refused call never reached the server
    assert budget.spent_usd + projection > 0.5
    assert budget.in_flight_usd == 0.0


def test_budget_counts_in_flight_reservations() -> None:
    budget = Budget(1.0)
    first = budget.reserve(0.6)
    with pytest.raises(CircuitBreakerError, match=r"spent \$0.0000, in flight \$0.6000, next"):
        budget.reserve(0.5)
    budget.settle(first, 0.1)
    second = budget.reserve(0.5)
    budget.release(second)
    assert budget.spent_usd == pytest.approx(0.1)
    assert budget.in_flight_usd == 0.0


@pytest.mark.parametrize(("remaining", "ceiling", "source"),
                         [(1.5, 1.5, "provider_balance"), (None, 5.0, "config"),
                          (10.0, 5.0, "config")])
def test_ceiling_is_min_of_config_and_balance(
    remaining: float | None, ceiling: float, source: str
) -> None:
    with MockServer(EchoBackend(), PRICES, seed=1,
                    options=ServerOptions(api_key=KEY, limit_remaining=remaining)) as srv:
        budget = Budget(5.0)

        async def go() -> float | None:
            cfg = config(srv.base_url)
            async with build_client(cfg) as client:
                return await fetch_balance(provider(cfg, client, budget=budget), budget)

        assert asyncio.run(go()) == remaining
    assert budget.ceiling_usd == ceiling
    assert budget.source == source
    assert budget.snapshot()["source"] == source


def test_rejected_key_on_balance_is_config_error() -> None:
    with MockServer(EchoBackend(), PRICES, seed=1,
                    options=ServerOptions(api_key="another-key")) as srv:
        async def go() -> None:
            cfg = config(srv.base_url)
            async with build_client(cfg) as client:
                await fetch_balance(provider(cfg, client), Budget(5.0))

        refused = f"the provider refused the key: HTTP 401 .*{KEY_ENV}"
        with pytest.raises(ConfigError, match=refused):
            asyncio.run(go())
