"""Small GET-JSON helper for the provider's side endpoints (``/models``, ``/key``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from gate.providers.capped import DEFAULT_MAX_BYTES, send_capped
from gate.providers.classify import UNPARSEABLE

_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


async def get_json(
    client: httpx.AsyncClient,
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    attempts: int = 3,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[int, Any]:
    """``GET url``; returns (status, parsed JSON or ``UNPARSEABLE``).

    Transient statuses and transport errors are tried ``attempts`` times (1 s, 2 s, ... apart);
    the last transport error is raised (an ``httpx.HTTPError``). A body over ``max_bytes`` is
    not read: ``capped.ResponseTooLarge`` (an ``httpx.HTTPError``), never retried.
    """
    for attempt in range(1, attempts + 1):
        try:
            response = await send_capped(client, "GET", url, headers=headers,
                                         max_bytes=max_bytes)
        except httpx.TransportError:
            if attempt == attempts:
                raise
        else:
            if response.status_code not in _TRANSIENT or attempt == attempts:
                return response.status_code, _parse(response.content)
        await sleep(float(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _parse(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return UNPARSEABLE
