"""Prices: from the provider's live list (``pricing: live``) or the config (``pricing: table``).

Both fail closed: a model id that is not listed with numeric prices is a ``ConfigError`` (exit 4)
raised before any completion call. A live list that cannot be reached (the network, TLS, DNS, a
proxy, or the server answering 5xx/429 three times) is a ``CircuitBreakerError`` naming the URL
and the cause: a halt (exit 2), not invalid input, since nothing in the PR's files is wrong.
Ids match exactly: no fuzzy matching, no default price, no
suffix stripping (``anthropic/claude-opus-4`` does not price ``anthropic/claude-opus-4.6``).

Live lists are OpenRouter-shaped: ``GET {base_url}/models`` ->
``{"data": [{"id": ..., "pricing": {"prompt": "0.000003", "completion": "...", "request": "0"}}]}``
with USD-per-token strings, and ``input_cache_read`` (the price of a prompt token served from the
provider's cache) when the model has one. A price of ``-1`` means the provider prices the model per
request (a router): it cannot be budgeted, and is said so. The list is fetched with the key when
there is one (some servers answer 401 without it); a refused key is said plainly.
"""

from __future__ import annotations

import asyncio
import difflib
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpx

from gate.config.schema import Price, ProviderConfig
from gate.errors import CircuitBreakerError, ConfigError, Problem
from gate.providers.capped import DEFAULT_MAX_BYTES, ResponseTooLarge
from gate.providers.httpjson import endpoint, failure, get_json

_UNAVAILABLE = frozenset({408, 429, 500, 502, 503, 504})


def compute_cost(
    prompt_tokens: int, completion_tokens: int, price: Price, cached_tokens: int = 0
) -> float:
    """USD cost of one completion: tokens times per-token prices, plus the per-request price.

    ``cached_tokens`` (a part of ``prompt_tokens``) cost the cache-read price when the list has one.
    """
    cached = min(max(cached_tokens, 0), prompt_tokens) if price.cache_read is not None else 0
    prompt = (prompt_tokens - cached) * price.prompt + cached * (price.cache_read or 0.0)
    return prompt + completion_tokens * price.completion + price.request


def table_prices(
    name: str, cfg: ProviderConfig, models: Iterable[str], *, config_path: str = "gate.yaml"
) -> dict[str, Price]:
    """Prices of ``models`` from ``providers.<name>.prices``; every one must be there."""
    missing = [m for m in models if m not in cfg.prices]
    if missing:
        raise ConfigError(
            [
                Problem(config_path, None, f"providers.{name}.prices has no entry for {m!r} "
                        "(pricing: table needs the exact model id)")
                for m in missing
            ]
        )
    return {m: cfg.prices[m] for m in models}


async def live_prices(
    name: str,
    client: httpx.AsyncClient,
    base_url: str,
    models: Iterable[str],
    *,
    config_path: str = "gate.yaml",
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_s: float | None = None,
) -> dict[str, Price]:
    """Fetch ``GET {base_url}/models`` once and price every model in ``models`` from it.

    ``headers`` carry the key when the provider has one. ``base_url``'s query is kept.
    """
    url = str(endpoint(base_url, "models"))
    try:
        status, listing = await get_json(client, url, headers, sleep=sleep, max_bytes=max_bytes,
                                         deadline_s=deadline_s)
    except ResponseTooLarge as exc:
        raise ConfigError.one(
            config_path, None, f"provider {name!r}: the live price list {url}: {exc} "
            f"(raise providers.{name}.max_response_bytes if the list is genuine)"
        ) from None
    except httpx.HTTPError as exc:
        raise CircuitBreakerError(
            f"{name}: cannot fetch the live price list GET {url} ({failure(exc)})"
        ) from None
    if status in (401, 403):
        raise ConfigError.one(
            config_path, None, f"provider {name!r}: the provider refused the key: HTTP {status} "
            f"on GET {url} (check the key in api_key_env, or use pricing: table)"
        )
    if status in _UNAVAILABLE or status == 407:
        raise CircuitBreakerError(
            f"{name}: cannot fetch the live price list GET {url} (HTTP {status}"
            f"{' from the proxy: proxy_refused' if status == 407 else ''})")
    if status != 200:
        raise ConfigError.one(
            config_path, None, f"provider {name!r}: live price list {url} answered HTTP {status}"
        )
    return prices_from_listing(name, listing, models, url=url, config_path=config_path)


def prices_from_listing(
    name: str, listing: Any, models: Iterable[str], *, url: str, config_path: str = "gate.yaml"
) -> dict[str, Price]:
    """Price each model from a parsed ``/models`` listing; ConfigError lists every failure."""
    entries = _entries(listing)
    if entries is None:
        raise ConfigError.one(
            config_path, None, f"provider {name!r}: {url} did not return a model list ('data')"
        )
    prices: dict[str, Price] = {}
    problems: list[Problem] = []
    for model in models:
        price = _price_of(entries.get(model))
        if isinstance(price, Price):
            prices[model] = price
        else:
            problems.append(Problem(config_path, None, _unpriced(name, model, price, url, entries)))
    if problems:
        raise ConfigError(problems)
    return prices


def _entries(listing: Any) -> dict[str, Mapping[str, Any]] | None:
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        return None
    out: dict[str, Mapping[str, Any]] = {}
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            out[item["id"]] = item
    return out


def _price_of(entry: Mapping[str, Any] | None) -> Price | str:
    """The entry's price, or why it has none."""
    if entry is None:
        return "is not listed"
    pricing = entry.get("pricing")
    if not isinstance(pricing, dict):
        return "is listed without prices"
    values: dict[str, float] = {}
    for key in ("prompt", "completion", "request"):
        raw = pricing.get(key, "0" if key == "request" else None)
        number = _number(raw)
        if number is None:
            if _number(raw, allow_negative=True) == VARIABLE_PRICE:
                return (f"has a variable {key} price (-1: the provider prices this model per "
                        "request), so the gate cannot budget it; pick a fixed-price model id")
            return f"has no numeric {key} price ({raw!r})"
        values[key] = number
    return Price(**values, cache_read=_number(pricing.get("input_cache_read")))


VARIABLE_PRICE = -1.0  # a router's "price": decided per request


def _number(raw: Any, *, allow_negative: bool = False) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and (value >= 0 or allow_negative) else None


def _unpriced(
    name: str, model: str, why: str, url: str, entries: Mapping[str, Any]
) -> str:
    message = f"provider {name!r}: model {model!r} {why} in the live price list {url}"
    if model in entries:  # listed: the id is right, the price is the problem
        return message
    close = difflib.get_close_matches(model, list(entries), n=3, cutoff=0.8)
    if close:
        message += f" (ids must match exactly; listed: {', '.join(close)})"
    return message
