"""Loopback servers that behave like the field: proxies, gateways, odd servers (not a test module).

Each runs an asyncio server in a thread of its own (its own event loop), so it keeps serving
while the client's loop is blocked. The servers speak HTTP/1.1 with a few lines of their own:
they are test fixtures, playing the part of a proxy or a misbehaving gateway exactly as the
tests need, which no ready-made server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import ssl
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import brotli

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

COMPLETION = {
    "id": "gen-field", "object": "chat.completion", "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5},
}


@dataclass
class Head:
    method: str
    target: str
    headers: dict[str, str]


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return Head(method, target, headers)


async def read_body(reader: asyncio.StreamReader, head: Head) -> bytes:
    length = int(head.headers.get("content-length", "0"))
    return await reader.readexactly(length) if length else b""


def response(status: int, body: bytes, **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}",
             *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class LoopServer:
    """``handler`` served on ``host`` (an asyncio server in its own thread and loop)."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0,
                 context: ssl.SSLContext | None = None, sock: socket.socket | None = None) -> None:
        self.handler = handler
        self.host, self.port, self.context, self.sock = host, port, context, sock
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self._ready = threading.Event()
        self.loop = asyncio.new_event_loop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError,
                asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> LoopServer:
        async def start() -> None:
            if self.sock is not None:
                self.server = await asyncio.start_server(self._serve, sock=self.sock,
                                                         ssl=self.context)
            else:
                self.server = await asyncio.start_server(self._serve, self.host, self.port,
                                                         ssl=self.context)
            self.port = self.server.sockets[0].getsockname()[1]
            self._ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop and wait for it (blocks the caller's thread)."""
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop_listening(self) -> None:
        """Stop accepting connections (called on the server's loop): nothing listens any more."""
        self.server.close()

    def close_idle(self) -> None:
        """Close every connection now (as a server's idle timeout would), and wait until done."""
        def close() -> None:
            for writer in self.writers:
                writer.close()
            self.writers.clear()

        self.call(close)

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.server.close()
            handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            for writer in self.writers:
                writer.close()
            await asyncio.sleep(0.01)  # closed transports finish closing

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Recorder:
    """An OpenAI-ish origin: answers completions, ``/models`` and ``/key``; records heads."""

    encoding: str | None = None  # compress every body this way, whatever the client accepts
    heads: list[Head] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    gone_after_key: Callable[[], None] | None = None  # called once /key was answered

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (head := await read_head(reader)) is not None:
            await read_body(reader, head)
            self.heads.append(head)
            path = head.target.split("?", 1)[0]
            if path.endswith("/models"):
                payload: Any = self.models
            elif path.endswith("/key"):
                payload = {"data": {"limit_remaining": None}}
            else:
                payload = COMPLETION
            body, extra = encode(json.dumps(payload).encode(), self.encoding)
            gone = self.gone_after_key is not None and path.endswith("/key")
            if gone:
                extra["Connection"] = "close"
            writer.write(response(200, body, Content_Type="application/json", **extra))
            await writer.drain()
            if gone and self.gone_after_key is not None:
                self.gone_after_key()
                return


def encode(body: bytes, encoding: str | None) -> tuple[bytes, dict[str, str]]:
    if encoding is None:
        return body, {}
    packed = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}[encoding]
    return packed(body), {"Content_Encoding": encoding}


@dataclass
class Proxy:
    """A forwarding (absolute-form) and CONNECT proxy. ``names`` maps host names only the proxy
    can resolve to ``(ip, port)``; ``require_auth`` answers 407 to everything; ``seen`` records
    each request line."""

    names: dict[str, tuple[str, int]] = field(default_factory=dict)
    require_auth: bool = False
    seen: list[str] = field(default_factory=list)

    def _target(self, authority: str) -> tuple[str, int]:
        host, _, port = authority.partition(":")
        return self.names.get(host, (host, int(port or 80)))

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        if head is None:
            return
        self.seen.append(f"{head.method} {head.target}")
        if self.require_auth:
            writer.write(response(407, b"proxy authentication required",
                                  Proxy_Authenticate='Basic realm="egress"', Connection="close"))
            await writer.drain()
            return
        if head.method == "CONNECT":
            up_reader, up_writer = await asyncio.open_connection(*self._target(head.target))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await pipe(reader, writer, up_reader, up_writer, b"")
            return
        while head is not None:  # keep-alive towards the client, one upstream connection each
            await self._forward(head, reader, writer)
            head = await read_head(reader)
            if head is not None:
                self.seen.append(f"{head.method} {head.target}")

    async def _forward(self, head: Head, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        authority, _, path = head.target.split("://", 1)[1].partition("/")
        body = await read_body(reader, head)
        up_reader, up_writer = await asyncio.open_connection(*self._target(authority))
        headers = {**head.headers, "connection": "close"}  # the answer ends with the connection
        lines = [f"{head.method} /{path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        while data := await up_reader.read(65536):
            writer.write(data)
            await writer.drain()
        up_writer.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter,
               first: bytes) -> None:
    up_writer.write(first)

    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(OSError):
            dst.close()

    await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


@contextlib.contextmanager
def blackholed_ipv6(port: int) -> Iterator[socket.socket]:
    """A listener on ``[::1]:port`` whose accept queue is full: new SYNs are dropped, as on a
    network path that swallows IPv6 packets (connect hangs; nothing is refused)."""
    listener = socket.socket(socket.AF_INET6)
    listener.bind(("::1", port))
    listener.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket(socket.AF_INET6)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("::1", port))
        fillers.append(filler)
    try:
        yield listener
    finally:
        for sock in (*fillers, listener):
            sock.close()


class RefusingTls:
    """A TLS server that refuses every handshake with one alert (``sni_callback`` returning it),
    then closes gracefully, as a real server does (the client reads the alert, not a reset)."""

    def __init__(self, context: ssl.SSLContext, alert: int) -> None:
        context.sni_callback = lambda *_: alert  # type: ignore[assignment,misc,return-value]
        self.context = context
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.handshakes += 1
            spare = conn.dup()  # wrap_socket takes conn's descriptor over and closes it
            with spare:
                with contextlib.suppress(ssl.SSLError, OSError):
                    self.context.wrap_socket(conn, server_side=True)
                spare.settimeout(5)
                with contextlib.suppress(OSError):
                    while spare.recv(4096):  # until the client hangs up
                        pass

    def __enter__(self) -> RefusingTls:
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(10)
