"""gate's HTTP/1.1 pool (gate.providers.http1) against loopback servers answering crafted bytes.

Each test's server is an asyncio server in the test's own loop that reads one request (head and
Content-Length body) and writes exactly the bytes the test gives, so every framing and every
failure is the server's doing, not a library's.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from gate.providers.http1 import BodyTooLarge, Pool, Response, before_send

Reply = Callable[[int, bytes], Awaitable[bytes | None]]  # (request number, request) -> bytes


class Server:
    """Answers request N with ``reply(N, request_bytes)``; ``None`` closes the connection."""

    def __init__(self, reply: Reply, *, close_after: bool = False) -> None:
        self.reply = reply
        self.close_after = close_after  # close the connection after each answer
        self.requests: list[bytes] = []
        self.reads: list[bytes] = []  # every recv, to see whether a request came in one piece
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = await reader.read(65536)
                    if not data:
                        return
                    self.reads.append(data)
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    data = await reader.read(65536)
                    if not data:
                        return
                    self.reads.append(data)
                    rest += data
                request, buffer = head + b"\r\n\r\n" + rest[:length], rest[length:]
                self.requests.append(request)
                answer = await self.reply(len(self.requests), request)
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    return
        finally:
            writer.close()


def ok(body: bytes, *extra: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (len(body), b"".join(h + b"\r\n" for h in extra), body))


TIMEOUTS = httpx.Timeout(5.0)


def pool(limit: int = 4) -> Pool:
    return Pool(limit, ssl_context=ssl.create_default_context())


async def fetch(p: Pool, url: str, body: bytes = b"{}", method: str = "POST",
                headers: list[tuple[bytes, bytes]] | None = None,
                timeouts: httpx.Timeout = TIMEOUTS) -> tuple[Response, bytes]:
    response = await p.request(method, httpx.URL(url + "/v1/chat/completions"),
                               headers or [(b"Content-Type", b"application/json")], body,
                               timeouts)
    try:
        data = await response.aread()
    finally:
        await response.aclose()
    return response, data


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_content_length_responses_reuse_one_connection() -> None:
    async def go() -> None:
        async def reply(n: int, request: bytes) -> bytes:
            return ok(b'{"n":%d}' % n)

        async with Server(reply) as srv:
            p = pool()
            for i in range(5):
                response, data = await fetch(p, srv.url)
                assert (response.status, data) == (200, b'{"n":%d}' % (i + 1))
                assert response.headers["content-type"] == "application/json"
            assert srv.connections == 1
            assert p.connections_made == 1
            assert p.in_flight == 0
            await p.aclose()

    run(go())


def test_request_head_is_well_formed_and_leaves_in_one_write() -> None:
    async def go() -> None:
        async def reply(n: int, request: bytes) -> bytes:
            return ok(b"{}")

        async with Server(reply) as srv:
            p = pool()
            body = b'{"model":"m","messages":[]}'
            await fetch(p, srv.url, body, headers=[(b"Authorization", b"Bearer k"),
                                                   (b"Content-Type", b"application/json")])
            request = srv.requests[0]
            head, _, sent = request.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            assert lines[0] == b"POST /v1/chat/completions HTTP/1.1"
            assert lines[1] == b"Host: " + srv.url.removeprefix("http://").encode()
            assert b"Content-Length: %d" % len(body) in lines
            assert b"Authorization: Bearer k" in lines
            assert sent == body
            assert srv.reads[0] == request  # head and body arrived together
            await p.aclose()

    run(go())


def test_audit_hook_runs_once_right_before_the_single_write() -> None:
    """The hook fires before the request's one ``transport.write`` and the write holds the
    whole request; a request that never reaches a write (refused connection) never fires it."""
    async def go() -> None:
        async def reply(n: int, request: bytes) -> bytes:
            return ok(b"{}")

        async with Server(reply) as srv:
            p = pool()
            await fetch(p, srv.url)  # opens the keep-alive connection
            conn = p._idle[("http", "127.0.0.1", int(srv.url.rsplit(":", 1)[1]))][0]
            assert conn.transport is not None
            events: list[str] = []
            real_write = conn.transport.write

            def recording_write(data: bytes | bytearray | memoryview) -> None:
                events.append(f"write {len(data)}")
                real_write(data)

            conn.transport.write = recording_write  # type: ignore[method-assign]
            with before_send(lambda: events.append("hook")):
                await fetch(p, srv.url, b'{"x":1}')
            assert events == ["hook", f"write {len(srv.requests[1])}"]
            await p.aclose()

        fired: list[str] = []
        with before_send(lambda: fired.append("hook")), pytest.raises(httpx.ConnectError):
            await fetch(pool(), srv.url)  # the server is gone: nothing sent, nothing recorded
        assert fired == []

    run(go())


def test_chunked_body_with_extensions_and_trailers() -> None:
    async def go() -> None:
        async def reply(n: int, request: bytes) -> bytes:
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")

        async with Server(reply) as srv:
            p = pool()
            for _ in range(2):
                _, data = await fetch(p, srv.url)
                assert data == b"hello world"
            assert srv.connections == 1  # the chunked body was read to its end: reused
            await p.aclose()

    run(go())


def test_body_until_close_and_connection_close_are_not_reused() -> None:
    async def go() -> None:
        async def until_close(n: int, request: bytes) -> bytes:
            return b"HTTP/1.1 200 OK\r\n\r\nall of it"

        async def close_header(n: int, request: bytes) -> bytes:
            return ok(b"{}", b"Connection: close")

        for reply, expected in ((until_close, b"all of it"), (close_header, b"{}")):
            async with Server(reply, close_after=True) as srv:
                p = pool()
                for _ in range(2):
                    _, data = await fetch(p, srv.url)
                    assert data == expected
                assert p.connections_made == 2
                await p.aclose()

    async def until_close_server() -> None:
        # the until-close server must close for the body to end
        async def reply(n: int, request: bytes) -> None:
            return None

        async with Server(reply) as srv:
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await fetch(pool(), srv.url)

    run(go())
    run(until_close_server())


def test_interim_responses_no_body_statuses_and_head() -> None:
    async def go() -> None:
        async def reply(n: int, request: bytes) -> bytes:
            if n == 1:
                return b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"after 100")
            if n == 2:
                return b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
            return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"  # a HEAD's length, no body

        async with Server(reply) as srv:
            p = pool()
            response, data = await fetch(p, srv.url)
            assert (response.status, data) == (200, b"after 100")
            response, data = await fetch(p, srv.url)
            assert (response.status, data) == (204, b"")
            response, data = await fetch(p, srv.url, b"", method="HEAD")
            assert (response.status, data) == (200, b"")
            assert srv.connections == 1
            await p.aclose()

    run(go())


@pytest.mark.parametrize(("answer", "match"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
     "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "before the body's end"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", "not followed by"),
    (b"SMTP ready\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 200 OK\r\n folded: no\r\n\r\n", "malformed response header"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000, "longer than"),
])
def test_malformed_responses_are_protocol_errors(answer: bytes, match: str) -> None:
    async def go() -> None:
        async def reply(n: int, request: bytes) -> bytes | None:
            return answer

        async with Server(reply, close_after=True) as srv:
            p = pool()
            task = fetch(p, srv.url)
            with pytest.raises(httpx.RemoteProtocolError, match=match):
                await asyncio.wait_for(task, 5)
            assert p.in_flight == 0
            assert not p._idle
            await p.aclose()

    run(go())


def test_timeouts_and_refused_connections_are_httpx_errors() -> None:
    async def go() -> None:
        arrived = asyncio.Event()

        async def silent(n: int, request: bytes) -> bytes:
            arrived.set()
            await asyncio.sleep(30)
            return b""

        async with Server(silent) as srv:
            p = pool(limit=1)
            # no deadline races another: `slow` would wait 30 s for its answer
            slow = asyncio.ensure_future(
                fetch(p, srv.url, timeouts=httpx.Timeout(5.0, read=30.0)))
            await arrived.wait()
            with pytest.raises(httpx.PoolTimeout):  # the one slot is taken by `slow`
                await fetch(p, srv.url, timeouts=httpx.Timeout(5.0, pool=0.1))
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            assert p.in_flight == 0  # a cancelled request gives its slot back
            with pytest.raises(httpx.ReadTimeout):
                await fetch(p, srv.url, timeouts=httpx.Timeout(5.0, read=0.2))
            assert p.in_flight == 0
            await p.aclose()
        with pytest.raises(httpx.ConnectError):
            await fetch(pool(), srv.url)

    run(go())


def test_header_injection_is_refused_before_anything_is_sent() -> None:
    async def go() -> None:
        async def reply(n: int, request: bytes) -> bytes:
            return ok(b"{}")

        async with Server(reply) as srv:
            p = pool()
            for bad in ([(b"Authorization", b"Bearer k\r\nX-Evil: 1")],
                        [(b"X-Evil\r\nHost", b"h")], [(b"Host", b"other")],
                        [(b"Transfer-Encoding", b"chunked")]):
                with pytest.raises(httpx.LocalProtocolError):
                    await fetch(p, srv.url, headers=bad)
            assert srv.requests == []
            assert p.in_flight == 0
            await p.aclose()

    run(go())


def test_body_cap_and_a_body_nobody_reads_stays_bounded() -> None:
    big = b"x" * (4 * 1024 * 1024)

    async def go() -> None:
        async def reply(n: int, request: bytes) -> bytes:
            return ok(big)

        async with Server(reply) as srv:
            p = pool()
            response = await p.request("GET", httpx.URL(srv.url + "/big"), [], b"", TIMEOUTS)
            with pytest.raises(BodyTooLarge) as err:
                await response.aread(1024 * 1024)
            assert err.value.received <= 1024 * 1024 + 64 * 1024
            await response.aclose()
            response = await p.request("GET", httpx.URL(srv.url + "/big"), [], b"", TIMEOUTS)
            await asyncio.sleep(0.3)  # the server writes it all; the client reads none of it
            assert len(next(iter(p._open)).buffer) <= 512 * 1024  # reading paused, not buffered
            assert len(await response.aread()) == len(big)  # and resumed when read
            await response.aclose()
            await p.aclose()

    run(go())


def test_stale_idle_connection_is_replaced() -> None:
    async def go() -> None:
        async def reply(n: int, request: bytes) -> bytes | None:
            return ok(b"{}", b"Keep-Alive: timeout=0")

        async with Server(reply) as srv:
            p = Pool(2, ssl_context=ssl.create_default_context(), keepalive_expiry=0.0)
            await fetch(p, srv.url)
            await fetch(p, srv.url)  # the idle connection has expired: a new one
            assert p.connections_made == 2
            await p.aclose()

    run(go())


def test_tls_with_a_verified_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)], capture_output=True)
    assert made.returncode == 0, made.stderr
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def go() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ok(b'{"tls":true}'))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        trusting = ssl.create_default_context(cafile=str(cert))
        p = Pool(1, ssl_context=trusting)
        response = await p.request("GET", httpx.URL(f"https://localhost:{port}/x"), [], b"",
                                   TIMEOUTS)
        assert await response.aread() == b'{"tls":true}'
        await response.aclose()
        await p.aclose()
        untrusting = Pool(1, ssl_context=ssl.create_default_context())
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.request("GET", httpx.URL(f"https://localhost:{port}/x"), [], b"",
                                     TIMEOUTS)
        server.close()

    run(go())
