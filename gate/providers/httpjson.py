"""Small GET-JSON helper for the provider's side endpoints (``/models``, ``/key``), and how
every provider URL is made from ``base_url`` (``endpoint``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from gate.providers.base import RETRYABLE
from gate.providers.capped import DEFAULT_MAX_BYTES, send_capped
from gate.providers.classify import UNPARSEABLE, classify
from gate.providers.redact import redact

_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


def endpoint(base_url: str | httpx.URL, path: str) -> httpx.URL:
    """``base_url`` with ``/path`` appended to its path; its query (Azure's ``api-version``) kept.

    ``https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21`` and
    ``chat/completions`` give ``.../openai/deployments/d/chat/completions?api-version=2024-10-21``.
    """
    url = httpx.URL(base_url)
    return url.copy_with(path=f"{url.path.rstrip('/')}/{path.lstrip('/')}")


def failure(exc: httpx.HTTPError) -> str:
    """What went wrong, for a message: the error kind and the exception (secrets redacted)."""
    kind = classify(None, None, exc)
    cause = redact(f"{type(exc).__name__}: {exc}")[:200]
    return f"{kind.value}: {cause}" if kind is not None else cause


async def get_json(
    client: httpx.AsyncClient,
    url: str | httpx.URL,
    headers: Mapping[str, str] | None = None,
    *,
    attempts: int = 3,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_s: float | None = None,
) -> tuple[int, Any]:
    """``GET url``; returns (status, parsed JSON or ``UNPARSEABLE``).

    Transient statuses, timeouts and connection errors are tried ``attempts`` times (1 s, 2 s,
    ... apart); a TLS, DNS, proxy or refused-connection failure is not tried again (no wait
    will fix it). The last transport error is raised (an ``httpx.HTTPError``). A body over
    ``max_bytes`` is not read: ``capped.ResponseTooLarge`` (an ``httpx.HTTPError``), never retried.
    """
    for attempt in range(1, attempts + 1):
        try:
            response = await send_capped(client, "GET", url, headers=headers,
                                         max_bytes=max_bytes, deadline_s=deadline_s)
        except httpx.TransportError as exc:
            if attempt == attempts or not _worth_retrying(exc):
                raise
        else:
            if response.status_code not in _TRANSIENT or attempt == attempts:
                return response.status_code, _parse(response.content)
        await sleep(float(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _worth_retrying(exc: httpx.TransportError) -> bool:
    return classify(None, None, exc) in RETRYABLE


def _parse(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return UNPARSEABLE
