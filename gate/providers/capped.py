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
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import httpx

from gate.providers.http1 import BodyTooLarge, SendHook, before_send
from gate.providers.transport import GateClient

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
    url: str | httpx.URL,
    *,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    http_timeout: httpx.Timeout | None = None,
    before_body: Callable[[], None] | None = None,
) -> CappedResponse:
    """``method url``, its body read up to ``max_bytes``. Raises ``ResponseTooLarge`` beyond.

    ``before_body`` is called once, synchronously, right before the request leaves: through
    gate's client (``GateClient``), immediately before the request's bytes are handed to the
    kernel in one write (``http1.before_send``); through another httpx transport, at httpcore's
    ``send_request_body.started`` trace event (after the headers, before the body). A transport
    with neither (``httpx.MockTransport``) never calls it."""
    sent_headers = {"Accept-Encoding": "identity", **(headers or {})}
    timeout = http_timeout if http_timeout is not None else client.timeout
    hook = before_send(before_body) if before_body is not None else nullcontext(None)
    with hook as armed:
        if isinstance(client, GateClient) and client.direct_now():
            return await _send_direct(client, method, url, sent_headers, content or b"",
                                      timeout, max_bytes)
        extensions = {"trace": _body_hook(armed)} if armed is not None else None
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


async def _send_direct(
    client: GateClient, method: str, url: str | httpx.URL, headers: Mapping[str, str],
    content: bytes, timeouts: httpx.Timeout, max_bytes: int,
) -> CappedResponse:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    target = url if isinstance(url, httpx.URL) else httpx.URL(url)
    response = await client.transport.pool.request(method, target, raw, content, timeouts)
    try:
        declared = _content_length(response.headers)
        if declared is not None and declared > max_bytes:
            raise ResponseTooLarge(max_bytes, 0, response.status)
        try:
            body = await response.aread(max_bytes)
        except BodyTooLarge as exc:
            raise ResponseTooLarge(max_bytes, exc.received, response.status) from None
    finally:
        await response.aclose()
    return CappedResponse(response.status, response.headers, body)


def _body_hook(hook: SendHook) -> Callable[[str, Any], Awaitable[None]]:
    async def trace(event: str, info: Any) -> None:  # awaited by httpcore; never suspends
        if event.endswith(".send_request_body.started"):
            hook.fire()

    return trace


def _content_length(headers: httpx.Headers) -> int | None:
    try:
        return int(headers.get("content-length", ""))
    except ValueError:
        return None
