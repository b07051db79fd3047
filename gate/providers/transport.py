"""The run's HTTP client: httpx's API over aiohttp's connection pool.

``GateClient`` is an ``httpx.AsyncClient``; the rest of gate only ever sees httpx (the client,
httpx's exceptions). Under it, one ``aiohttp.ClientSession`` does all the HTTP. Two ways in,
over that same session:

- ``GateClient.open``, gate's own provider calls (``capped.send_capped``): the request goes to
  aiohttp's ``session.request`` as it is, with no ``httpx.Request``/``httpx.Response`` built per
  call (several times less client CPU per call: ``bench/inspect_cpu.py``, docs/providers.md);
- httpx's transport interface (``client.get``, ``client.send``, event hooks), for everything
  else: ``httpx_aiohttp.AiohttpTransport`` (the library the openai SDK offers for this) hands
  httpx's request to the same session.

What the client does for gate:

- proxies from the environment: ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``,
  upper or lower case, read by httpx (one proxy mount per scheme; ``open`` asks httpx which
  mount a URL goes to, once per URL); ``https://`` targets go through the proxy with ``CONNECT``;
- trust: the system's CA store, and ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set (OpenSSL's
  default paths), in one context per client; ALPN offers ``http/1.1``;
- IPv6/IPv4 fallback (happy eyeballs, aiohttp's ``happy_eyeballs_delay``);
- bodies in gzip, deflate or br decoded as they are read (by aiohttp on ``open``, by httpx on
  the transport interface), in bounded pieces;
- a pooled keep-alive connection is checked before it is reused: one the server has closed
  meanwhile (or that has bytes nobody asked for) is dropped and a new one is opened, so a
  server's idle timeout never surfaces as a provider error (``_FreshConnector``);
- no cookies are kept on the aiohttp side (providers need none).

``resolver`` (an ``aiohttp.abc.AbstractResolver``) replaces the system's name resolution; tests
use it to map a name to addresses they control.
"""

from __future__ import annotations

import asyncio
import errno
import select
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
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
    """Whether the failure was a timeout: aiohttp's own exception decides when there is one
    (an httpx class alone can mislead: httpx-aiohttp, on httpx's interface, maps a dropped
    connection to ``httpx.ConnectTimeout``)."""
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
    """aiohttp's exception (or the loop's) as the httpx one a caller handles; raised ``from`` it,
    so ``network_kind`` and ``is_timeout`` still read the original."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError is one too
        return httpx.TimeoutException(text)
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(text)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.ReadError(text)
    return httpx.TransportError(text)


_Headers = Mapping[str, str] | Sequence[tuple[str, str]]
_FAILURES = (aiohttp.ClientError, OSError, TimeoutError)  # what aiohttp lets through


@dataclass(frozen=True)
class _Route:
    """Where one URL's requests go: the URL as aiohttp takes it and the proxy httpx chose."""

    url: str
    proxy: str | None
    proxy_auth: aiohttp.BasicAuth | None
    proxy_headers: httpx.Headers | None


class Wire:
    """One response whose body is still on the wire: status and headers read, body not yet.

    The caller reads it with ``read`` until ``at_end`` (or ``b""``) and then ``release``s it (the
    connection goes back to the pool), or ``close``s it (the connection is dropped) when it stops
    early. ``headers`` are aiohttp's: case-insensitive, read-only, not copied."""

    __slots__ = ("_response", "content_length", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers = response.headers  # case-insensitive, read-only, as aiohttp parsed them
        self.content_length = response.content_length  # Content-Length, None when absent

    async def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the (decoded) body; ``b""`` at its end."""
        try:
            return await self._response.content.read(size)
        except _FAILURES as exc:
            raise _httpx_error(exc) from exc

    def at_end(self) -> bool:
        """Whether the whole body has been read (no ``read`` needed to find out)."""
        return self._response.content.at_eof()

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        self._response.close()


class _Body(httpx.AsyncByteStream):
    """httpx-aiohttp's body stream; the loop's ``TimeoutError`` (which httpx-aiohttp does not
    map) raised as an httpx exception too."""

    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except _FAILURES as exc:
            raise _httpx_error(exc) from exc

    async def aclose(self) -> None:
        await self._stream.aclose()


class _Transport(AiohttpTransport):
    """httpx-aiohttp's transport (httpx's interface: ``client.get``, ``client.send``, event
    hooks) over the client's one aiohttp session; what it does not map to an httpx exception is
    mapped here, so callers catch ``httpx.HTTPError`` and nothing of aiohttp's. It asks aiohttp
    not to decode bodies (``auto_decompress=False``): httpx decodes them, once."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except _FAILURES as exc:
            raise _httpx_error(exc) from exc
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream)
        return response

    async def aclose(self) -> None:
        """Nothing: the session is the client's (``GateClient`` closes it once)."""


def _before(seconds: float | None, deadline_s: float | None) -> float | None:
    """``seconds`` if that limit can expire before the deadline, else None (no limit)."""
    if seconds is None or deadline_s is None or seconds < deadline_s:
        return seconds
    return None


CHUNK_BYTES = 64 * 1024  # the most one read of a body returns


class GateClient(httpx.AsyncClient):
    """The run's ``httpx.AsyncClient`` over aiohttp: at most ``connections`` at once.

    ``open`` is the short way for gate's own calls (``capped.send_capped``): no
    ``httpx.Request``/``httpx.Response`` per call, the same session, proxies and errors."""

    def __init__(
        self, connections: int, timeout: httpx.Timeout, *,
        resolver: AbstractResolver | None = None, context: ssl.SSLContext | None = None,
    ) -> None:
        self.connections = max(1, connections)
        self.resolver = resolver
        self.ssl_context = context or ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self._routes: dict[int, tuple[str | httpx.URL, _Route]] = {}
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}
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
        """httpx-aiohttp over the session ``open`` uses (made on the first request of either)."""
        return _Transport(verify=self.ssl_context, proxy=proxy, client=self._shared_session)

    def _shared_session(self) -> aiohttp.ClientSession:
        return self._session or self._open_session()

    async def open(
        self, method: str, url: str | httpx.URL, headers: _Headers, content: bytes | None,
        http_timeout: httpx.Timeout, *, before_send: Callable[[], None] | None = None,
        deadline_s: float | None = None,
    ) -> Wire:
        """Send ``method url`` and return its response once the headers are in (``Wire``).

        ``headers``: a mapping or (name, value) pairs. Bodies in gzip, deflate or br are
        decoded by aiohttp as they are read. ``before_send`` is called right before
        the request is handed to aiohttp. ``deadline_s``: the caller bounds the whole exchange
        by that many seconds itself, so the parts of ``http_timeout`` that could never come
        first are not armed (a timer less per request and per read). Failures are httpx
        exceptions."""
        found = self._routes.get(id(url))  # by identity: hashing an httpx.URL formats it
        route = found[1] if found is not None and found[0] is url else self._route(url)
        session = self._session or self._open_session()
        if before_send is not None:
            before_send()
        try:
            response = await session.request(
                method, route.url, headers=headers, data=content, allow_redirects=False,
                timeout=self._client_timeout(http_timeout, deadline_s), auto_decompress=True,
                proxy=route.proxy, proxy_auth=route.proxy_auth,
                proxy_headers=route.proxy_headers)
        except _FAILURES as exc:
            raise _httpx_error(exc) from exc
        return Wire(response)

    def has_hooks(self) -> bool:
        """Whether httpx event hooks are set: those see every request and response, so
        requests then go the long way (``send``, through the same session)."""
        hooks = self.event_hooks
        return bool(hooks["request"] or hooks["response"])

    def _route(self, url: str | httpx.URL) -> _Route:
        """Which proxy (httpx's choice from the environment, ``NO_PROXY`` included)."""
        parsed = httpx.URL(url)
        transport = self._transport_for_url(parsed)
        proxy = transport.proxy if isinstance(transport, _Transport) else None
        auth = aiohttp.BasicAuth(*proxy.auth) if proxy is not None and proxy.auth else None
        route = _Route(str(parsed),
                       str(proxy.url) if proxy is not None else None, auth,
                       proxy.headers if proxy is not None and proxy.headers else None)
        if len(self._routes) >= 64:  # a handful of URLs per run; never grows without bound
            self._routes.clear()
        self._routes[id(url)] = (url, route)  # holding ``url`` keeps its id from being reused
        return route

    def _client_timeout(
        self, timeout: httpx.Timeout, deadline_s: float | None
    ) -> aiohttp.ClientTimeout:
        """httpx's connect, read and pool timeouts as aiohttp's (made once per value); those
        not shorter than ``deadline_s`` left out."""
        key = (timeout.connect, timeout.read, timeout.pool, deadline_s)
        found = self._timeouts.get(key)
        if found is None:
            found = self._timeouts[key] = aiohttp.ClientTimeout(
                sock_connect=_before(timeout.connect, deadline_s),
                sock_read=_before(timeout.read, deadline_s),
                connect=_before(timeout.pool, deadline_s))
        return found

    def _open_session(self) -> aiohttp.ClientSession:
        """The one aiohttp session, made on the first request (inside the running loop)."""
        connector = _FreshConnector(
            limit=self.connections, ssl=self.ssl_context, resolver=self.resolver,
            happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S, keepalive_timeout=30.0)
        self._session = aiohttp.ClientSession(
            connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def __aexit__(self, *exc_info: Any) -> None:
        await super().__aexit__(*exc_info)
        await self._close_session()

    async def aclose(self) -> None:
        await super().aclose()
        await self._close_session()

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            await asyncio.sleep(0)  # closed connections finish closing (connection_lost)
