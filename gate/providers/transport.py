"""gate's HTTP transport: ``GateTransport`` (httpx's transport API over ``http1.Pool``) and
``GateClient`` (the run's ``httpx.AsyncClient`` over it).

The pool (gate.providers.http1) keeps as many keep-alive connections as the provider's
concurrency, shares one TLS context (loading the CA store costs ~50 ms of CPU, once per run),
and sends each request in one write with the audit's ``started`` line written right before it.

Two ways in:

- ``send_capped`` (every provider request: completions, the price list, the balance) talks to
  ``GateClient.transport.pool`` directly: no httpx ``Request``/``Response`` objects, no cookie
  jar, redirects or auth flow, none of which an API call uses. It does so unless a proxy is
  configured in the environment or event hooks are set on the client; then it goes through
  the client, which routes the request to the proxy and runs the hooks.
- ``GateTransport.handle_async_request``: any other use of the client (httpx's own API), the
  response body streamed from the connection.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import AsyncIterator

import httpx

from gate.providers.http1 import Pool, Response

_SET_BY_POOL = frozenset({b"host", b"content-length", b"transfer-encoding"})


class _Body(httpx.AsyncByteStream):
    """A response body read from the connection as it arrives; the connection freed on close."""

    def __init__(self, response: Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._response.aiter_body():
            yield piece

    async def aclose(self) -> None:
        await self._response.aclose()


class GateTransport(httpx.AsyncBaseTransport):
    """At most ``connections`` requests at once over keep-alive connections (``http1.Pool``)."""

    def __init__(
        self, connections: int, *, keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.ssl_context = ssl_context or httpx.create_ssl_context()
        self.pool = Pool(max(1, connections), ssl_context=self.ssl_context,
                         keepalive_expiry=keepalive_expiry)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in _SET_BY_POOL]
        timeout = request.extensions.get("timeout")
        limits = httpx.Timeout(**timeout) if isinstance(timeout, dict) else httpx.Timeout(5.0)
        response = await self.pool.request(request.method, request.url, headers, body, limits)
        return httpx.Response(
            status_code=response.status, headers=response.headers, stream=_Body(response),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


class GateClient(httpx.AsyncClient):
    """The run's ``httpx.AsyncClient`` over a ``GateTransport`` (``factory.build_client``)."""

    def __init__(self, transport: GateTransport, timeout: httpx.Timeout) -> None:
        super().__init__(transport=transport, timeout=timeout)
        self.transport = transport
        self.direct = not any(k in ("http", "https", "all") for k in urllib.request.getproxies())

    def direct_now(self) -> bool:
        """Whether a request may skip the client (no proxy configured, no event hooks set)."""
        return self.direct and not any(self.event_hooks.values())
