"""A small HTTP/1.1 client on asyncio for the provider's calls: a keep-alive pool, nothing else.

Every model call goes through here, so its cost per call is the client's cost per call. A
general client (httpx over httpcore over h11 over anyio) spends most of a loopback call's CPU on
generality the provider never uses: HTTP/2, proxies, cookies, redirects, auth flows, per-event
tracing, cancel scopes around each read and write. This module does one thing: send a request
whose head and body are already bytes, in **one** ``transport.write`` (one system call), on a
pooled keep-alive connection, and read the response with a cap on its size.

What it implements of RFC 9112 (a client's side): the request line and headers (names and
values checked for CR, LF and NUL, so nothing can be smuggled), the status line and headers of
the response (interim 1xx responses skipped), the body framed by ``Transfer-Encoding: chunked``
(trailers read and dropped), by ``Content-Length``, or by the connection's end; no body for
HEAD, 1xx, 204 and 304. A connection goes back to the pool only when its response was read to
the end, the server did not say ``Connection: close``, and nothing else arrived. TLS is
asyncio's (``ssl=`` on the connection, the caller's ``SSLContext``, hostname checked).

Errors are httpx's exceptions (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``,
``WriteTimeout``, ``PoolTimeout``, ``ReadError``, ``RemoteProtocolError``,
``LocalProtocolError``), so callers classify them the same whichever client sent the request.

**Audit-before-send.** Inside ``before_send(fn)``, the request sent by this task calls ``fn``
once, synchronously, right before its bytes are handed to the kernel; nothing runs between the
two but this module's own few lines. Since the request leaves in a single write, a kill -9
lands either before it (the server receives nothing) or after it.
"""

from __future__ import annotations

import asyncio
import contextvars
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

MAX_HEAD_BYTES = 64 * 1024  # a response's status line and headers, together
READ_CHUNK = 64 * 1024  # the largest piece of a body handed out at once
BUFFER_HIGH = 256 * 1024  # received and not yet read: stop reading from the socket above this
_FORBIDDEN = frozenset(b"\r\n\x00")


# --- audit-before-send -----------------------------------------------------------------------


class SendHook:
    """One request's ``before_send`` callback, called at most once."""

    __slots__ = ("_fn", "fired")

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn = fn
        self.fired = False

    def fire(self) -> None:
        if not self.fired:
            self.fired = True
            self._fn()


_HOOK: contextvars.ContextVar[SendHook | None] = contextvars.ContextVar("gate_send_hook",
                                                                      default=None)


@contextmanager
def before_send(fn: Callable[[], None]) -> Iterator[SendHook]:
    """Call ``fn`` once, right before the request sent in this block leaves (see the module)."""
    hook = SendHook(fn)
    token = _HOOK.set(hook)
    try:
        yield hook
    finally:
        _HOOK.reset(token)


# --- one connection --------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive connection: buffers what arrives, wakes the one waiting reader."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.idle_since = 0.0
        self.origin: tuple[str, str, int] = ("", "", 0)
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        self._reading_paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > BUFFER_HIGH and self.transport is not None:
            self.transport.pause_reading()  # a body nobody reads stays in the kernel
            self._reading_paused = True
        self._wake()

    def take(self, limit: int) -> bytes:
        """Up to ``limit`` (and at most READ_CHUNK) buffered bytes, removed from the buffer."""
        n = min(limit, READ_CHUNK)
        piece = bytes(self.buffer[:n])
        del self.buffer[:n]
        self._consumed()
        return piece

    def _consumed(self) -> None:
        if self._reading_paused and len(self.buffer) <= BUFFER_HIGH // 2:
            self._reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # used by the pool
    def usable(self, now: float, expiry: float) -> bool:
        """An idle connection can carry a request: open, quiet, not expired."""
        return (self.transport is not None and not self.transport.is_closing() and not self.eof
                and not self.buffer and now - self.idle_since < expiry)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def send(self, data: bytes, wait_s: float | None) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or self.eof:
            raise httpx.WriteError("the connection was closed before the request was sent")
        hook = _HOOK.get()
        if hook is not None:
            hook.fire()  # the audit's `started` line; the request leaves on the next line
        transport.write(data)
        if self._paused:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await _within(self._drained, wait_s,
                              httpx.WriteTimeout("timed out sending the request"))
            finally:
                self._drained = None
            if self.eof:
                raise httpx.WriteError("the connection closed while the request was sent")

    async def more(self, wait_s: float | None) -> bool:
        """Wait for more bytes; False at the end of the stream (ReadError if it broke)."""
        if self.eof:
            if self.error is not None:
                raise httpx.ReadError(f"connection lost: {self.error}")
            return False
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await _within(self._waiter, wait_s,
                          httpx.ReadTimeout("timed out waiting for the server"))
        finally:
            self._waiter = None
        if self.error is not None and not self.buffer:
            raise httpx.ReadError(f"connection lost: {self.error}")
        return bool(self.buffer) or not self.eof

    async def line(self, wait_s: float | None, limit: int) -> bytes:
        """One CRLF-terminated line (without it)."""
        return await self._until(b"\r\n", limit, wait_s, "a line of the response is too long",
                                 "the server closed the connection mid-response")

    async def crlf(self, wait_s: float | None) -> None:
        """The CRLF that ends a chunk's data."""
        while len(self.buffer) < 2:
            if not await self.more(wait_s):
                raise httpx.RemoteProtocolError("the server closed the connection mid-chunk")
        if self.buffer[:2] != b"\r\n":
            raise httpx.RemoteProtocolError("a chunk not followed by CRLF")
        del self.buffer[:2]
        self._consumed()

    async def head(self, wait_s: float | None) -> bytes:
        """The status line and headers, up to and without the empty line."""
        return await self._until(
            b"\r\n\r\n", MAX_HEAD_BYTES, wait_s,
            f"response headers longer than {MAX_HEAD_BYTES} bytes",
            "the server closed the connection mid-headers",
            closed_before="the server disconnected without sending a response")

    async def _until(self, end: bytes, limit: int, wait_s: float | None, too_long: str,
                     closed: str, *, closed_before: str | None = None) -> bytes:
        """The buffered bytes up to ``end`` (removed with it), waiting for more as needed.
        The connection's end raises ``closed`` (``closed_before`` if nothing had arrived)."""
        while True:
            at = self.buffer.find(end)
            if at >= 0:
                found = bytes(self.buffer[:at])
                del self.buffer[:at + len(end)]
                self._consumed()
                return found
            if len(self.buffer) > limit:
                raise httpx.RemoteProtocolError(too_long)
            if not await self.more(wait_s):
                raise httpx.RemoteProtocolError(
                    closed_before if closed_before and not self.buffer else closed)


async def _within(
    future: asyncio.Future[None], wait_s: float | None, late: httpx.TimeoutException,
) -> None:
    """``future``'s result within ``wait_s`` seconds (None: no limit), else ``late``."""
    try:
        async with asyncio.timeout(wait_s):
            await future
    except TimeoutError:
        raise late from None


# --- the response ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Framing:
    kind: str  # "none" | "length" | "chunked" | "close"
    length: int = 0


class Response:
    """A response whose body is read as it arrives (``aiter_body``); ``aclose`` when done."""

    def __init__(self, pool: Pool, conn: _Connection, status: int, headers: httpx.Headers,
                 framing: _Framing, reusable: bool, wait_s: float | None) -> None:
        self.status = status
        self.headers = headers
        self._pool = pool
        self._conn: _Connection | None = conn
        self._framing = framing
        self._reusable = reusable
        self._wait_s = wait_s
        self._complete = framing.kind == "none"

    async def aiter_body(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None or self._complete:
            return
        kind, wait_s = self._framing.kind, self._wait_s
        if kind == "length":
            left = self._framing.length
            while left:
                if not conn.buffer and not await conn.more(wait_s):
                    raise httpx.RemoteProtocolError(
                        f"the server closed the connection {left} bytes before the body's end")
                piece = conn.take(left)
                left -= len(piece)
                yield piece
        elif kind == "chunked":
            while True:
                size_line = await conn.line(wait_s, 1024)
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise httpx.RemoteProtocolError("a malformed chunk size") from None
                if size == 0:
                    while await conn.line(wait_s, MAX_HEAD_BYTES):  # trailers, dropped
                        pass
                    break
                while size:
                    if not conn.buffer and not await conn.more(wait_s):
                        raise httpx.RemoteProtocolError(
                            "the server closed the connection mid-chunk")
                    piece = conn.take(size)
                    size -= len(piece)
                    yield piece
                await conn.crlf(wait_s)
        else:  # until the connection ends
            while True:
                if conn.buffer:
                    yield conn.take(READ_CHUNK)
                elif not await conn.more(wait_s):
                    break
        self._complete = True

    async def aread(self, max_bytes: int | None = None) -> bytes:
        """The whole body; with ``max_bytes``, raises ``BodyTooLarge`` past it."""
        body = bytearray()
        async for piece in self.aiter_body():
            body += piece
            if max_bytes is not None and len(body) > max_bytes:
                raise BodyTooLarge(len(body))
        return bytes(body)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        keep = self._complete and self._reusable and not conn.buffer and not conn.eof
        self._pool.release(conn, keep=keep)


class BodyTooLarge(Exception):
    """``Response.aread`` read more than its ``max_bytes``; ``received`` bytes so far."""

    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


# --- the pool --------------------------------------------------------------------------------


class Pool:
    """Keep-alive connections to any origin, at most ``limit`` requests in flight at once."""

    def __init__(
        self, limit: int, *, ssl_context: ssl.SSLContext, keepalive_expiry: float = 30.0,
        user_agent: str = "gate",
    ) -> None:
        self.limit = limit
        self.ssl_context = ssl_context
        self.keepalive_expiry = keepalive_expiry
        self.user_agent = user_agent
        self._slots: asyncio.Semaphore | None = None
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self.in_flight = 0
        self.connections_made = 0
        self._closed = False

    async def request(
        self, method: str, url: httpx.URL, headers: list[tuple[bytes, bytes]], body: bytes,
        timeouts: httpx.Timeout,
    ) -> Response:
        """Send ``method url`` with ``headers`` and ``body``; the response once its head is in.

        ``headers`` must not hold Host, Content-Length or Transfer-Encoding (added here)."""
        if self._closed:
            raise httpx.ConnectError("the connection pool is closed")
        head = _request_head(method, url, headers, len(body), self.user_agent)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        try:
            async with asyncio.timeout(timeouts.pool):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection in time") from None
        self.in_flight += 1
        conn: _Connection | None = None
        try:
            conn = await self._connection(url, timeouts)
            await conn.send(head + body if body else head, timeouts.write)
            return await self._response(conn, method, timeouts.read)
        except BaseException:
            if conn is not None:
                self._discard(conn)
            self._free()
            raise

    def release(self, conn: _Connection, *, keep: bool) -> None:
        """A response is done with ``conn``: back to the pool, or closed."""
        if keep and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.origin, []).append(conn)
        else:
            self._discard(conn)
        self._free()

    async def aclose(self) -> None:
        self._closed = True
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()

    # internals

    def _free(self) -> None:
        self.in_flight -= 1
        assert self._slots is not None
        self._slots.release()

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open.discard(conn)

    async def _connection(self, url: httpx.URL, timeouts: httpx.Timeout) -> _Connection:
        scheme, host, port = _origin(url)
        idle = self._idle.get((scheme, host, port))
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.usable(now, self.keepalive_expiry):
                return conn
            self._discard(conn)
        loop = asyncio.get_running_loop()
        tls = self.ssl_context if scheme == "https" else None
        try:
            async with asyncio.timeout(timeouts.connect):
                _, conn = await loop.create_connection(
                    _Connection, host, port, ssl=tls, server_hostname=host if tls else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        conn.origin = (scheme, host, port)
        self._open.add(conn)
        self.connections_made += 1
        return conn

    async def _response(self, conn: _Connection, method: str, wait_s: float | None) -> Response:
        while True:
            lines = (await conn.head(wait_s)).split(b"\r\n")
            status, version = _status_line(lines[0])
            headers = _header_fields(lines[1:])
            if 100 <= status < 200:
                if status == 101:
                    raise httpx.RemoteProtocolError("the server switched protocols (101)")
                continue  # interim response (100 Continue, 103 Early Hints)
            break
        fields: dict[bytes, list[bytes]] = {}
        for name, value in headers:
            fields.setdefault(name.lower(), []).append(value)
        framing = _framing(method, status, fields)
        connection = {t.strip().lower()
                      for v in fields.get(b"connection", ()) for t in v.split(b",")}
        reusable = (version == b"HTTP/1.1" and b"close" not in connection
                    and framing.kind != "close")
        return Response(self, conn, status, httpx.Headers(headers), framing, reusable, wait_s)


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    scheme = url.scheme
    if scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
    port = url.port or (443 if scheme == "https" else 80)
    return scheme, url.host, port


def _request_head(
    method: str, url: httpx.URL, headers: list[tuple[bytes, bytes]], length: int,
    user_agent: str,
) -> bytes:
    target = url.raw_path
    host = url.netloc  # host[:port] as given (IDNA-encoded by httpx), the port only if explicit
    lines = [b"%s %s HTTP/1.1" % (method.encode("ascii"), target), b"Host: " + host]
    names = set()
    for name, value in headers:
        if _FORBIDDEN.intersection(name) or _FORBIDDEN.intersection(value) or b":" in name:
            raise httpx.LocalProtocolError(
                f"header {name.decode('latin-1')!r}: CR, LF, NUL or ':' is not allowed")
        lower = name.lower()
        if lower in (b"host", b"content-length", b"transfer-encoding"):
            raise httpx.LocalProtocolError(f"header {name.decode('latin-1')!r} is set by gate")
        names.add(lower)
        lines.append(name + b": " + value)
    if b"user-agent" not in names:
        lines.append(b"User-Agent: " + user_agent.encode("ascii"))
    if length or method not in ("GET", "HEAD"):
        lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _status_line(line: bytes) -> tuple[int, bytes]:
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3:
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    try:
        return int(parts[1]), parts[0]
    except ValueError:
        raise httpx.RemoteProtocolError(f"not an HTTP status: {parts[1]!r}") from None


def _header_fields(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    fields = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise httpx.RemoteProtocolError(f"a malformed response header: {line[:80]!r}")
        fields.append((name, value.strip(b" \t")))
    return fields


def _framing(method: str, status: int, fields: dict[bytes, list[bytes]]) -> _Framing:
    """How the response's body ends (RFC 9112 section 6.3, a client's view)."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return _Framing("none")
    if b"transfer-encoding" in fields:
        codings = [c.strip().lower() for v in fields[b"transfer-encoding"] for c in v.split(b",")]
        return _Framing("chunked") if codings[-1] == b"chunked" else _Framing("close")
    lengths = {v.strip() for v in fields.get(b"content-length", ())}
    if lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise httpx.RemoteProtocolError(f"an invalid Content-Length: {sorted(lengths)}")
        length = int(next(iter(lengths)))
        return _Framing("length", length) if length else _Framing("none")
    return _Framing("close")
