"""Shared helpers of the provider tests (not a test module)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiohttp import web

from gate.config.schema import Price, ProviderConfig, RateLimit, RetryPolicy
from gate.providers.base import Attempt, ChatRequest
from gate.providers.budget import Budget
from gate.providers.factory import build_provider
from gate.providers.openai_compat import OpenAICompatProvider
from gate.providers.testing import FakeTime

MODEL = "mock/expert"
PRICES = {MODEL: Price(prompt=0.000001, completion=0.000002)}
KEY_ENV = "GATE_TEST_KEY"
KEY = "sk-or-v1-TESTKEY-9f8e7d6c5b4a"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def config(
    base_url: str = "http://provider.test/v1",
    *,
    pricing: str = "table",
    timeout_s: float = 5.0,
    concurrency: int = 8,
    rate_limit: RateLimit | None = None,
    max_response_bytes: int = 8 * 1024 * 1024,
    **retry: Any,
) -> ProviderConfig:
    """A provider config with zero waits unless the test asks for some."""
    policy = {"initial_wait_s": 0.0, "jitter_s": 0.0, "cooldown_s": 0.0, **retry}
    return ProviderConfig(
        type="openai", base_url=base_url, api_key_env=KEY_ENV, pricing=pricing,  # type: ignore[arg-type]
        prices=PRICES, timeout_s=timeout_s, concurrency=concurrency,
        rate_limit=rate_limit or RateLimit(), retry=RetryPolicy(**policy),
        max_response_bytes=max_response_bytes,
    )


def provider(
    cfg: ProviderConfig,
    client: httpx.AsyncClient,
    *,
    budget: Budget | None = None,
    time: FakeTime | None = None,
    notices: list[str] | None = None,
    real_time: bool = False,
) -> OpenAICompatProvider:
    """The provider under test; waits are instant (fake time) unless ``real_time``."""
    fake = time or FakeTime()
    sink: Callable[[str], None] = notices.append if notices is not None else (lambda _: None)
    if real_time:
        return build_provider("testprov", cfg, client, budget=budget, notice=sink,
                              env={KEY_ENV: KEY})
    return build_provider(
        "testprov", cfg, client, budget=budget, notice=sink, sleep=fake.sleep,
        clock=fake.clock, env={KEY_ENV: KEY},
    )


def request(i: int = 0, model: str = MODEL, max_tokens: int = 64) -> ChatRequest:
    return ChatRequest(model, [{"role": "user", "content": f"question {i}"}], [], 7, max_tokens)


def completion(response_id: str = "gen-1", cost: float | None = None) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": 10, "completion_tokens": 5}
    if cost is not None:
        usage["cost"] = cost
    return {
        "id": response_id,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
        "usage": usage,
    }


def scripted(
    *responses: httpx.Response | Exception,
) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    """A client whose calls get ``responses`` in order (the last one repeats; exceptions raise)."""
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        item = responses[min(len(seen), len(responses)) - 1]
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


def failed(attempts: list[Attempt]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in attempts:
        if a.outcome != "ok":
            out[a.outcome] = out.get(a.outcome, 0) + 1
    return out


@asynccontextmanager
async def loopback_app(path: str, handler: Handler) -> AsyncIterator[str]:
    """An aiohttp server on 127.0.0.1 answering ``POST path`` with ``handler``; yields its base
    URL (``http://127.0.0.1:PORT/v1``) until the block exits."""
    app = web.Application()
    app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()
