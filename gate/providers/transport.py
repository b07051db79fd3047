"""The run's HTTP client: httpx's API over aiohttp's connection pool (``httpx-aiohttp``).

``GateClient`` is an ``httpx.AsyncClient``; the rest of gate only ever sees httpx. Under it, each
request goes to an ``httpx_aiohttp.AiohttpTransport`` over one ``aiohttp.ClientSession`` (with
several times less client CPU per call than plain httpx: ``bench/overhead.py --transport
httpx``, figures in docs/providers.md). What the client does for gate:

- proxies from the environment: ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``,
  upper or lower case, read by httpx (one proxy mount per scheme, each with its own transport);
  ``https://`` targets go through the proxy with ``CONNECT``;
- trust: the system's CA store, and ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set (OpenSSL's
  default paths), in one context per client; ALPN offers ``http/1.1``;
- IPv6/IPv4 fallback (happy eyeballs, aiohttp's ``happy_eyeballs_delay``);
- bodies in gzip, deflate or br decoded (by httpx, as they are read);
- a pooled keep-alive connection is checked before it is reused: one the server has closed
  meanwhile (or that has bytes nobody asked for) is dropped and a new one is opened, so a
  server's idle timeout never surfaces as a provider error (``_FreshConnector``).

``resolver`` (an ``aiohttp.abc.AbstractResolver``) replaces the system's name resolution; tests
use it to map a name to addresses they control.
"""

from __future__ import annotations

import asyncio
import errno
import select
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver
from httpx_aiohttp import AiohttpTransport

from gate.errors import ErrorKind

HAPPY_EYEBALLS_DELAY_S = 0.25  # RFC 8305's recommended head start of the first address family


def ssl_context() -> ssl.SSLContext:
    """A verifying client context: system CA store (honours SSL_CERT_FILE / SSL_CERT_DIR)."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _reusable(proto: Any) -> bool:
    """Whether an idle pooled connection can carry a request: still open and nothing to read.

    An idle connection has nothing to read unless the server closed it (EOF) or sent bytes
    nobody asked for; either way it must not be used. The event loop has not seen it yet when
    it was blocked (CPU-bound work) while the server closed the connection."""
    transport = getattr(proto, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    try:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


class _FreshConnector(aiohttp.TCPConnector):
    """aiohttp's pool, never handing out a pooled connection the server has closed.

    aiohttp checks only that the connection's transport is open, which it still is when the
    loop has not yet read the server's FIN; httpx's own pool polls the socket, as this does.
    ``_get`` is aiohttp's (private) "a pooled connection or None" step; the test of a server
    closing idle connections while the loop is blocked fails if it stops being called."""

    async def _get(self, key: Any, traces: list[Any]) -> Any:
        while (conn := await super()._get(key, traces)) is not None:
            if _reusable(conn.protocol):
                return conn
            conn.close()  # drops it from the pool; the loop tries the next one, else a new one
        return None


def network_kind(exc: BaseException) -> ErrorKind | None:
    """The kind of a failure that is ours or the network's, not the provider's (else None).

    Read from the exception's causes: the transport raises httpx exceptions ``from`` aiohttp's
    (and those ``from`` the OS's), and only the latter say which failure it was."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError | aiohttp.ClientSSLError):
            return ErrorKind.TLS_ERROR
        if isinstance(cause, socket.gaierror | aiohttp.ClientConnectorDNSError):
            return ErrorKind.DNS_ERROR
        if isinstance(cause, aiohttp.ClientHttpProxyError) and cause.status in (403, 407):
            return ErrorKind.PROXY_REFUSED
        if isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED:
            return ErrorKind.CONNECTION_REFUSED
    return None


def is_timeout(exc: BaseException) -> bool:
    """Whether the failure was a timeout (httpx-aiohttp maps some failures that were not to
    ``httpx.ConnectTimeout``: aiohttp's own exception decides)."""
    for cause in _causes(exc):
        if isinstance(cause, aiohttp.ClientError):
            return isinstance(cause, aiohttp.ServerTimeoutError)
    return isinstance(exc, httpx.TimeoutException | TimeoutError)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        suppressed = current.__suppress_context__
        current = current.__cause__ or (None if suppressed else current.__context__)
    return chain


def _httpx_error(exc: Exception) -> httpx.TransportError:
    """An exception the transport let through (aiohttp's, the loop's) as an httpx error."""
    if isinstance(exc, TimeoutError):
        return httpx.TimeoutException(f"{type(exc).__name__}: {exc}")
    return httpx.TransportError(f"{type(exc).__name__}: {exc}")


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _httpx_error(exc) from exc

    async def aclose(self) -> None:
        await self._stream.aclose()


class _Transport(AiohttpTransport):
    """httpx-aiohttp's transport; what it does not map to an httpx exception is mapped here,
    so callers catch ``httpx.HTTPError`` and nothing of aiohttp's."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _httpx_error(exc) from exc
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream)
        return response


class GateClient(httpx.AsyncClient):
    """The run's ``httpx.AsyncClient`` over aiohttp: at most ``connections`` at once per route."""

    def __init__(
        self, connections: int, timeout: httpx.Timeout, *,
        resolver: AbstractResolver | None = None, context: ssl.SSLContext | None = None,
    ) -> None:
        self.connections = max(1, connections)
        self.resolver = resolver
        self.ssl_context = context or ssl_context()
        self._sessions: list[aiohttp.ClientSession] = []
        super().__init__(timeout=timeout, trust_env=True, verify=self.ssl_context,
                         limits=httpx.Limits(max_connections=self.connections))

    def _init_transport(
        self, verify: Any = True, cert: Any = None, trust_env: bool = True, http1: bool = True,
        http2: bool = False, limits: httpx.Limits | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncBaseTransport:
        return transport or self._aiohttp(None)

    def _init_proxy_transport(
        self, proxy: httpx.Proxy, verify: Any = True, cert: Any = None, trust_env: bool = True,
        http1: bool = True, http2: bool = False, limits: httpx.Limits | None = None,
    ) -> httpx.AsyncBaseTransport:
        return self._aiohttp(proxy)

    def _aiohttp(self, proxy: httpx.Proxy | None) -> httpx.AsyncBaseTransport:
        return _Transport(verify=self.ssl_context, proxy=proxy, client=self._session)

    async def aclose(self) -> None:
        await super().aclose()
        await asyncio.sleep(0)  # closed connections finish closing (connection_lost) on the loop

    def _session(self) -> aiohttp.ClientSession:
        """Called by the transport on its first request, inside the running event loop."""
        connector = _FreshConnector(
            limit=self.connections, ssl=self.ssl_context, resolver=self.resolver,
            happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S, keepalive_timeout=30.0)
        session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                        auto_decompress=False)
        self._sessions.append(session)
        return session
