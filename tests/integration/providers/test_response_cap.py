"""A provider answering with 50 MB bodies: gate reads at most the cap plus one chunk, records
``response_too_large`` (not retried, not a model failure), and the price list and balance
endpoints are capped the same way."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from provider_support import config, provider, request

from gate.errors import CircuitBreakerError, ConfigError
from gate.providers.base import Attempt, ErrorKind, ProviderError
from gate.providers.capped import ResponseTooLarge, send_capped
from gate.providers.factory import build_client

BODY = 50 * 1024 * 1024
CHUNK = 64 * 1024
CAP = 1024 * 1024


class _Huge(BaseHTTPRequestHandler):
    """Answers every request with a 50 MB JSON-ish body; counts the bytes it managed to send."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self) -> None:
        server: HugeServer = self.server  # type: ignore[assignment]
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server.requests += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if server.declare_length:
            self.send_header("Content-Length", str(BODY))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        block = b" " * CHUNK
        try:
            for _ in range(BODY // CHUNK):
                if server.declare_length:
                    self.wfile.write(block)
                else:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                server.sent += len(block)
        except OSError:
            self.close_connection = True

    do_GET = _send
    do_POST = _send


class HugeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, declare_length: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Huge)
        self.declare_length = declare_length
        self.requests = 0
        self.sent = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.fixture(params=["gate", "httpx"])
def client_kind(request: pytest.FixtureRequest) -> str:
    """gate's own client (the run's, ``build_client``) and a plain httpx client."""
    kind: str = request.param
    return kind


def make_client(kind: str) -> httpx.AsyncClient:
    return build_client(config("http://unused")) if kind == "gate" else httpx.AsyncClient()


@pytest.fixture(params=[False, True], ids=["chunked", "content-length"])
def huge(request: pytest.FixtureRequest) -> Iterator[HugeServer]:
    server = HugeServer(declare_length=request.param)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_capped_read_holds_at_most_cap_plus_one_chunk(huge: HugeServer, client_kind: str) -> None:
    async def go() -> ResponseTooLarge:
        async with make_client(client_kind) as client:
            with pytest.raises(ResponseTooLarge) as err:
                await send_capped(client, "GET", huge.url + "/anything", max_bytes=CAP)
            return err.value

    err = asyncio.run(go())
    assert err.received <= CAP + CHUNK
    assert err.limit == CAP
    # the server was cut off long before the end (what it sent sits in socket buffers at most)
    assert huge.sent < BODY // 2


def test_completion_over_the_cap_is_its_own_provider_error_and_is_not_retried(
    huge: HugeServer, client_kind: str,
) -> None:
    cfg = config(huge.url, max_attempts=5).model_copy(update={"max_response_bytes": CAP})
    attempts: list[Attempt] = []

    async def go() -> None:
        async with make_client(client_kind) as client:
            p = provider(cfg, client)
            with pytest.raises(ProviderError) as err:
                await p.complete(request(), attempts.append)
            assert err.value.kind is ErrorKind.RESPONSE_TOO_LARGE

    asyncio.run(go())
    assert huge.requests == 1  # not retried
    assert [a.outcome for a in attempts] == ["response_too_large"]
    assert attempts[0].error is not None
    assert "larger than" in attempts[0].error


def test_price_list_and_balance_over_the_cap_fail_closed(
    huge: HugeServer, client_kind: str,
) -> None:
    cfg = config(huge.url, pricing="live").model_copy(update={"max_response_bytes": CAP})

    async def go() -> None:
        async with make_client(client_kind) as client:
            p = provider(cfg, client)
            with pytest.raises(ConfigError, match="max_response_bytes"):
                await p.prepare_pricing(["mock/expert"])
            with pytest.raises(CircuitBreakerError, match="ResponseTooLarge"):
                await p.fetch_balance()

    asyncio.run(go())
    assert huge.requests == 2  # one each: a body too large is not retried
    assert huge.sent < BODY
