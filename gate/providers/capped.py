"""Reading HTTP response bodies with a cap on their size.

A provider (or anything pretending to be one) can answer with a body of any size; reading it
whole would hold all of it in memory. ``send_capped`` streams the response and stops reading
as soon as more than ``max_bytes`` have arrived (or at once when ``Content-Length`` says so),
closing the connection; it then raises ``ResponseTooLarge``. At most ``max_bytes`` plus one
network chunk (64 KiB) is ever held.

Compression is declined (``Accept-Encoding: identity``), so the bytes counted are the bytes
received; a server that compresses anyway is counted after decoding.

``ResponseTooLarge`` is an ``httpx.HTTPError`` but not a ``TransportError``: callers that handle
HTTP errors handle it, and the classifier gives it its own kind (``response_too_large``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_MAX_BYTES = 8 * 1024 * 1024


class ResponseTooLarge(httpx.HTTPError):
    """The body was longer than the cap; ``received`` bytes were read before giving up."""

    def __init__(self, limit: int, received: int, status: int | None) -> None:
        self.limit = limit
        self.received = received
        self.status = status
        super().__init__(f"response body larger than {limit} bytes (max_response_bytes); "
                         f"stopped reading after {received}")


@dataclass(frozen=True)
class CappedResponse:
    status_code: int
    headers: httpx.Headers
    content: bytes


async def send_capped(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    http_timeout: httpx.Timeout | None = None,
    before_body: Callable[[], None] | None = None,
) -> CappedResponse:
    """``method url``, its body read up to ``max_bytes``. Raises ``ResponseTooLarge`` beyond.

    ``before_body`` is called once, synchronously, right before the request body is written to
    the connection (httpcore's ``send_request_body.started`` trace event; nothing yields to the
    event loop between the two), i.e. after the headers and before the request is complete at
    the server. A transport without that event (``httpx.MockTransport``) never calls it."""
    sent_headers = {"Accept-Encoding": "identity", **(headers or {})}
    timeout = http_timeout if http_timeout is not None else client.timeout
    extensions = {"trace": _body_hook(before_body)} if before_body is not None else None
    request = client.build_request(method, url, headers=sent_headers, content=content,
                                   timeout=timeout, extensions=extensions)
    response = await client.send(request, stream=True)
    try:
        declared = _content_length(response.headers)
        if declared is not None and declared > max_bytes:
            raise ResponseTooLarge(max_bytes, 0, response.status_code)
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise ResponseTooLarge(max_bytes, len(body), response.status_code)
    finally:
        await response.aclose()
    return CappedResponse(response.status_code, response.headers, bytes(body))


def _body_hook(before_body: Callable[[], None]) -> Callable[[str, Any], Awaitable[None]]:
    async def trace(event: str, info: Any) -> None:  # awaited by httpcore; never suspends
        if event.endswith(".send_request_body.started"):
            before_body()

    return trace


def _content_length(headers: httpx.Headers) -> int | None:
    try:
        return int(headers.get("content-length", ""))
    except ValueError:
        return None
