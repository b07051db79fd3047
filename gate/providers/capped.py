"""Sending one request and reading its body with a cap on its size and a deadline.

A provider (or anything pretending to be one) can answer with a body of any size; reading it
whole would hold all of it in memory. ``send_capped`` streams the response and stops reading
as soon as more than ``max_bytes`` have arrived (or at once when ``Content-Length`` says so),
closing the connection; it then raises ``ResponseTooLarge``. At most ``max_bytes`` plus one
decoded network chunk is ever held.

Compression is declined (``Accept-Encoding: identity``); a server that compresses anyway
(gzip, deflate, br) is decoded as the body is read and counted after decoding.

With the run's client (``transport.GateClient``) the request goes straight to its aiohttp
session (``GateClient.open``): no ``httpx.Request`` or ``httpx.Response`` per call. Any other
``httpx.AsyncClient``, or a ``GateClient`` with httpx event hooks set, goes through httpx's
``send``.

``deadline_s`` bounds the whole exchange, from handing the request to the transport to the
body's last byte: a server trickling a byte a second cannot keep an attempt alive longer. Past
it, ``AttemptDeadline`` (an ``httpx.TimeoutException``) is raised.

``ResponseTooLarge`` is an ``httpx.HTTPError`` but not a ``TransportError``: callers that handle
HTTP errors handle it, and the classifier gives it its own kind (``response_too_large``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from gate.providers.transport import CHUNK_BYTES, GateClient, Wire

DEFAULT_MAX_BYTES = 8 * 1024 * 1024


class ResponseTooLarge(httpx.HTTPError):
    """The body was longer than the cap; ``received`` bytes were read before giving up."""

    def __init__(self, limit: int, received: int, status: int | None) -> None:
        self.limit = limit
        self.received = received
        self.status = status
        super().__init__(f"response body larger than {limit} bytes (max_response_bytes); "
                         f"stopped reading after {received}")


class AttemptDeadline(httpx.TimeoutException):
    """The whole exchange took longer than its deadline (``timeout_s``)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within {seconds:g} s (timeout_s, the whole "
                         "attempt)")


@dataclass(frozen=True)
class CappedResponse:
    """``headers`` look names up in any case (``httpx.Headers``, or aiohttp's
    ``CIMultiDictProxy`` on ``GateClient.open``: no copy per call)."""

    status_code: int
    headers: Mapping[str, str]
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
    deadline_s: float | None = None,
    before_send: Callable[[], None] | None = None,
) -> CappedResponse:
    """``method url``, its body read up to ``max_bytes``. Raises ``ResponseTooLarge`` beyond,
    ``AttemptDeadline`` when the whole exchange takes longer than ``deadline_s``.

    ``before_send`` is called once, synchronously, right before the request is handed to the
    client's transport (the audit's ``started`` line): nothing of the request has left yet, and
    nothing but the transport's own code runs before it does."""
    sent_headers = {"Accept-Encoding": "identity", **(headers or {})}
    timeout = http_timeout if http_timeout is not None else client.timeout
    deadline = asyncio.timeout(deadline_s)
    try:
        async with deadline:
            if isinstance(client, GateClient) and not client.has_hooks():
                wire = await client.open(method, url, sent_headers, content, timeout,
                                         before_send=before_send, deadline_s=deadline_s)
                return await _read_wire(wire, max_bytes)
            request = client.build_request(method, url, headers=sent_headers, content=content,
                                           timeout=timeout)
            return await _exchange(client, request, max_bytes, before_send)
    except TimeoutError:
        if deadline_s is None or not deadline.expired():
            raise
        raise AttemptDeadline(deadline_s) from None


async def _read_wire(wire: Wire, max_bytes: int) -> CappedResponse:
    try:
        declared = wire.content_length
        if declared is not None and declared > max_bytes:
            raise ResponseTooLarge(max_bytes, 0, wire.status_code)
        chunks: list[bytes] = []
        received = 0
        while not wire.at_end() and (chunk := await wire.read(CHUNK_BYTES)):
            chunks.append(chunk)
            received += len(chunk)
            if received > max_bytes:
                raise ResponseTooLarge(max_bytes, received, wire.status_code)
    except BaseException:
        wire.close()  # the rest of the body is never read: the connection is not reused
        raise
    wire.release()
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one chunk: no copy
    return CappedResponse(wire.status_code, wire.headers, body)


async def _exchange(
    client: httpx.AsyncClient, request: httpx.Request, max_bytes: int,
    before_send: Callable[[], None] | None,
) -> CappedResponse:
    if before_send is not None:
        before_send()
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


def _content_length(headers: Mapping[str, str]) -> int | None:
    try:
        return int(headers.get("content-length", ""))
    except ValueError:
        return None
