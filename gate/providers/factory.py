"""Building the real provider path for one run. The engine calls, in this order:

    async with build_client(cfg) as client:                     # one pooled client per run
        provider = build_provider(name, cfg, client, budget=budget, notice=notice)
        await prepare_pricing(provider, models)                 # ConfigError (exit 4) if unpriced
        await fetch_balance(provider, budget)                   # ceiling = min(config, balance)
        ... provider.complete(request, on_attempt) ...          # from many trials at once

A missing API key is a ConfigError naming the environment variable (exit 4), raised by
``build_provider`` before anything is sent. The key is wrapped in ``Secret`` and registered for
redaction in logs and messages.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping

import httpx
from aiohttp.abc import AbstractResolver

from gate.config.schema import Price, ProviderConfig
from gate.errors import ConfigError
from gate.providers.budget import Budget
from gate.providers.openai_compat import OpenAICompatProvider
from gate.providers.redact import Secret, register_secret
from gate.providers.retry import Notice, Sleep
from gate.providers.transport import GateClient


def build_client(cfg: ProviderConfig, *, resolver: AbstractResolver | None = None) -> GateClient:
    """The run's HTTP client: keep-alive connections, as many as the provider's ``concurrency``
    (httpx over aiohttp, see gate.providers.transport). ``resolver`` replaces the system's name
    resolution (tests)."""
    timeout = httpx.Timeout(cfg.timeout_s, connect=min(cfg.timeout_s, 10.0))
    return GateClient(cfg.concurrency, timeout, resolver=resolver)


def read_api_key(
    name: str, cfg: ProviderConfig, env: Mapping[str, str], *, config_path: str = "gate.yaml"
) -> Secret | None:
    """The provider's key from ``env[cfg.api_key_env]``; None for a keyless (mock) provider."""
    if cfg.api_key_env is None:
        if cfg.type == "openai":
            raise ConfigError.one(config_path, None, f"provider {name!r} needs api_key_env")
        return None
    value = env.get(cfg.api_key_env, "").strip()
    if not value:
        raise ConfigError.one(
            config_path, None,
            f"provider {name!r}: environment variable {cfg.api_key_env} (api_key_env) is not set",
        )
    return register_secret(value)


def build_provider(
    name: str,
    cfg: ProviderConfig,
    client: httpx.AsyncClient,
    *,
    budget: Budget | None,
    notice: Notice,
    sleep: Sleep = asyncio.sleep,
    env: Mapping[str, str] = os.environ,
    base_url: str | None = None,
    config_path: str = "gate.yaml",
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> OpenAICompatProvider:
    """An ``OpenAICompatProvider`` for provider ``name``.

    ``base_url`` overrides ``cfg.base_url`` (the ``mock`` provider: ``MockServer.base_url``).
    ``notice`` receives one line per retry wait, cooldown and halt: print it, heartbeat it.
    """
    url = base_url or cfg.base_url
    if not url:
        raise ConfigError.one(config_path, None, f"provider {name!r} has no base_url")
    return OpenAICompatProvider(
        name, cfg, client, base_url=url, api_key=read_api_key(name, cfg, env,
                                                              config_path=config_path),
        budget=budget, notice=notice, sleep=sleep, clock=clock, rng=rng, config_path=config_path,
    )


async def prepare_pricing(
    provider: OpenAICompatProvider, models: Iterable[str]
) -> dict[str, Price]:
    """Price every model the run will call; ConfigError before any completion if one is unpriced."""
    return await provider.prepare_pricing(models)


async def fetch_balance(provider: OpenAICompatProvider, budget: Budget) -> float | None:
    """Read the provider's remaining credit and lower ``budget``'s ceiling to it if smaller."""
    remaining = await provider.fetch_balance()
    budget.apply_balance(remaining)
    return remaining
