"""gate's provider path against loopback servers that behave like the field: proxies (with
NO_PROXY and lower-case variables), a compressing gateway, a server closing idle connections
while gate's loop is blocked, a name whose IPv6 path swallows packets, an early 413, an
HTTP/2-only TLS server, an Azure-style URL, a trickling body, a certificate nobody trusts, a
name that does not resolve, a proxy answering 407.

Each test goes through the real client (``factory.build_client``) and the real provider, and
asserts the outcome and the kind of every attempt: the ``Attempt`` is what the engine writes
to audit.jsonl, and the ``ProviderError``'s kind is what results.json and the report count.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp.abc import AbstractResolver, ResolveResult
from netfield import (
    COMPLETION,
    LoopServer,
    Proxy,
    Recorder,
    RefusingTls,
    blackholed_ipv6,
    read_body,
    read_head,
    response,
)
from provider_support import KEY, config, provider, request

from gate.errors import CircuitBreakerError
from gate.providers.base import Attempt, ErrorKind, ProviderError
from gate.providers.factory import build_client
from gate.providers.pricing import live_prices

# the loopback servers' own asyncio streams (gate's client uses none), closed as their loop stops
pytestmark = pytest.mark.filterwarnings("ignore:unclosed <StreamWriter:ResourceWarning")



@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_server_context(ca: trustme.CA, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    return context


def _call(base_url: str, resolver: AbstractResolver | None = None,
          **cfg_args: Any) -> tuple[list[Attempt], Any]:
    """One ``complete`` through the real client; (attempts, response or the exception)."""
    cfg = config(base_url, **cfg_args)
    attempts: list[Attempt] = []

    async def go() -> Any:
        async with build_client(cfg, resolver=resolver) as client:
            prov = provider(cfg, client)
            try:
                return await prov.complete(request(), attempts.append)
            except (ProviderError, CircuitBreakerError) as exc:
                return exc

    return attempts, asyncio.run(go())


def _kinds(attempts: list[Attempt]) -> list[str]:
    return [a.outcome for a in attempts]


# --- proxies ----------------------------------------------------------------------------------

@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_requests_go_through_the_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str,
) -> None:
    """The provider's name resolves only at the proxy: the call succeeds only through it."""
    origin = Recorder()
    with LoopServer(origin) as up:
        proxy = Proxy(names={"provider.gate-test.invalid": ("127.0.0.1", up.port)})
        with LoopServer(proxy) as px:
            monkeypatch.setenv(variable, f"http://127.0.0.1:{px.port}")
            attempts, result = _call("http://provider.gate-test.invalid/v1")
    assert _kinds(attempts) == ["ok"], result
    assert proxy.seen == ["POST http://provider.gate-test.invalid/v1/chat/completions"]
    assert origin.heads[0].headers["authorization"] == f"Bearer {KEY}"


def test_https_goes_through_the_proxy_with_connect(
    monkeypatch: pytest.MonkeyPatch, ca: trustme.CA, tmp_path: Path,
) -> None:
    origin = Recorder()
    with LoopServer(origin, context=_tls_server_context(ca)) as up:
        proxy = Proxy(names={"localhost": ("127.0.0.1", up.port)})
        with LoopServer(proxy) as px:
            monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{px.port}")
            monkeypatch.setenv("SSL_CERT_FILE", _ca_file(ca, tmp_path))
            attempts, result = _call(f"https://localhost:{up.port}/v1")
    assert _kinds(attempts) == ["ok"], result
    assert proxy.seen == [f"CONNECT localhost:{up.port}"]


def test_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    origin = Recorder()
    proxy = Proxy()
    with LoopServer(origin) as up, LoopServer(proxy) as px:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{px.port}")
        monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
        attempts, _ = _call(f"http://127.0.0.1:{up.port}/v1")
    assert _kinds(attempts) == ["ok"]
    assert proxy.seen == []  # straight to the provider
    assert len(origin.heads) == 1


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_proxy_answering_407_is_proxy_refused_and_not_retried(
    monkeypatch: pytest.MonkeyPatch, scheme: str,
) -> None:
    proxy = Proxy(require_auth=True)
    with LoopServer(proxy) as px:
        monkeypatch.setenv(f"{scheme.upper()}_PROXY", f"http://127.0.0.1:{px.port}")
        attempts, result = _call(f"{scheme}://provider.gate-test.invalid/v1", max_attempts=3)
    assert _kinds(attempts) == ["proxy_refused"]  # one attempt: retrying cannot help
    assert isinstance(result, ProviderError)
    assert result.kind is ErrorKind.PROXY_REFUSED


# --- bodies and connections -------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressing_gateway_is_decoded(encoding: str) -> None:
    origin = Recorder(encoding=encoding)
    with LoopServer(origin) as up:
        attempts, result = _call(f"http://127.0.0.1:{up.port}/v1")
    assert _kinds(attempts) == ["ok"], result
    assert result.message["content"] == COMPLETION["choices"][0]["message"]["content"]
    assert origin.heads[0].headers["accept-encoding"] == "identity"


def test_a_compressed_body_is_capped_after_decoding() -> None:
    """A small gzip body that decodes past max_response_bytes is response_too_large."""
    huge = {**COMPLETION, "pad": " " * (4 * 1024 * 1024)}

    async def bomb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import gzip
        import json
        head = await read_head(reader)
        assert head is not None
        await read_body(reader, head)
        writer.write(response(200, gzip.compress(json.dumps(huge).encode()),
                              Content_Encoding="gzip"))
        await writer.drain()

    with LoopServer(bomb) as up:
        attempts, result = _call(f"http://127.0.0.1:{up.port}/v1",
                                 max_response_bytes=1024 * 1024)
    assert _kinds(attempts) == ["response_too_large"]
    assert isinstance(result, ProviderError)


def test_connections_closed_while_the_loop_was_blocked_are_not_provider_errors() -> None:
    """The server closes every idle keep-alive connection while gate's event loop is blocked
    (CPU-bound work): the next calls open new connections; no attempt fails."""
    origin = Recorder()
    cfg = config(concurrency=8)
    attempts: list[Attempt] = []
    with LoopServer(origin) as up:
        cfg = config(f"http://127.0.0.1:{up.port}/v1", concurrency=8)

        async def go() -> None:
            async with build_client(cfg) as client:
                prov = provider(cfg, client)
                for _ in range(3):
                    await asyncio.gather(*(prov.complete(request(i), attempts.append)
                                           for i in range(8)))
                    up.close_idle()  # synchronous: gate's loop is blocked meanwhile

        asyncio.run(go())
    assert _kinds(attempts) == ["ok"] * 24
    assert up.connections > 8  # the closed connections were replaced, not reused


class _Names(AbstractResolver):
    """Resolves ``dual.gate-test`` to an IPv6 address first, then an IPv4 one (same port)."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        assert host == "dual.gate-test"
        return [
            ResolveResult(hostname=host, host="::1", port=port, family=socket.AF_INET6,
                          proto=socket.IPPROTO_TCP, flags=socket.AI_NUMERICHOST),
            ResolveResult(hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET,
                          proto=socket.IPPROTO_TCP, flags=socket.AI_NUMERICHOST),
        ]

    async def close(self) -> None:
        return None


def test_ipv6_path_swallowing_packets_falls_back_to_ipv4() -> None:
    origin = Recorder()
    with LoopServer(origin) as up, blackholed_ipv6(up.port):
        attempts, result = _call(f"http://dual.gate-test:{up.port}/v1", _Names(up.port),
                                 timeout_s=60.0)
    assert _kinds(attempts) == ["ok"], result
    assert len(origin.heads) == 1


@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
def test_an_early_413_during_a_large_upload_is_the_413() -> None:
    """The server answers 413 as soon as it has the head (before reading the 16 MiB body),
    closes its write side and discards the rest: the status is what gate records
    (bad_request, not retried), not a connection error."""
    async def too_large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        assert head is not None
        writer.write(response(413, b'{"error": {"message": "request too large"}}',
                              Connection="close"))
        await writer.drain()
        writer.write_eof()
        while await reader.read(65536):  # the client is still sending: discarded
            pass
        drained.set()

    drained = threading.Event()
    big = request()
    big.messages.append({"role": "user", "content": "x" * (16 * 1024 * 1024)})
    cfg_attempts: list[Attempt] = []
    with LoopServer(too_large) as up:
        cfg = config(f"http://127.0.0.1:{up.port}/v1", max_attempts=3)

        async def go() -> Any:
            async with build_client(cfg) as client:
                try:
                    return await provider(cfg, client).complete(big, cfg_attempts.append)
                except ProviderError as exc:
                    return exc
                finally:  # the closed connection's last bytes leave meanwhile
                    await asyncio.to_thread(drained.wait, 60)

        result = asyncio.run(go())
    assert _kinds(cfg_attempts) == ["bad_request"]
    assert cfg_attempts[0].http_status == 413
    assert isinstance(result, ProviderError)


def test_a_trickling_body_is_bounded_by_the_attempt_deadline() -> None:
    """One byte every 50 ms keeps every read alive; timeout_s bounds the whole attempt."""
    sent = []

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        assert head is not None
        await read_body(reader, head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while True:
            writer.write(b" ")
            await writer.drain()
            sent.append(1)
            await asyncio.sleep(0.05)

    with LoopServer(trickle) as up:
        attempts, result = _call(f"http://127.0.0.1:{up.port}/v1", timeout_s=1.0,
                                 max_attempts=1)
    assert _kinds(attempts) == ["timeout"]
    assert attempts[0].error is not None
    assert "the whole attempt" in attempts[0].error
    assert isinstance(result, ProviderError)
    assert len(sent) < 100000


# --- TLS, names, refusals --------------------------------------------------------------------

def _ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_a_certificate_nobody_trusts_is_tls_error_and_not_retried(ca: trustme.CA) -> None:
    with LoopServer(Recorder(), context=_tls_server_context(ca)) as up:
        attempts, result = _call(f"https://localhost:{up.port}/v1", max_attempts=3)
    assert _kinds(attempts) == ["tls_error"]
    assert isinstance(result, ProviderError)
    assert result.kind is ErrorKind.TLS_ERROR


def test_ssl_cert_file_is_trusted(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", _ca_file(ca, tmp_path))
    with LoopServer(Recorder(), context=_tls_server_context(ca)) as up:
        attempts, result = _call(f"https://localhost:{up.port}/v1")
    assert _kinds(attempts) == ["ok"], result


def test_alpn_offers_http11(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    chosen: list[str | None] = []

    async def note(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chosen.append(writer.get_extra_info("ssl_object").selected_alpn_protocol())
        await Recorder()(reader, writer)

    monkeypatch.setenv("SSL_CERT_FILE", _ca_file(ca, tmp_path))
    with LoopServer(note, context=_tls_server_context(ca, ["h2", "http/1.1"])) as up:
        attempts, _ = _call(f"https://localhost:{up.port}/v1")
    assert _kinds(attempts) == ["ok"]
    assert chosen == ["http/1.1"]


NO_APPLICATION_PROTOCOL = 120  # the TLS alert an HTTP/2-only server sends an HTTP/1.1 client


def test_an_h2_only_server_fails_fast_with_tls_error(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server refuses the handshake with no_application_protocol, as an HTTP/2-only server
    (Go's, for one) does when the client offers only http/1.1: tls_error at once, not retried,
    and no wait for the read timeout."""
    monkeypatch.setenv("SSL_CERT_FILE", _ca_file(ca, tmp_path))
    started = time.monotonic()
    with RefusingTls(_tls_server_context(ca, ["h2"]), NO_APPLICATION_PROTOCOL) as up:
        attempts, result = _call(f"https://localhost:{up.port}/v1", timeout_s=600.0,
                                 max_attempts=3)
    assert up.handshakes == 1
    assert _kinds(attempts) == ["tls_error"]
    assert isinstance(result, ProviderError)
    assert time.monotonic() - started < 300  # far below the 600 s timeout: no read timeout


def test_an_unresolvable_host_is_dns_error_and_not_retried() -> None:
    attempts, result = _call("http://provider.gate-test.invalid/v1", max_attempts=3)
    assert _kinds(attempts) == ["dns_error"]
    assert isinstance(result, ProviderError)
    assert result.kind is ErrorKind.DNS_ERROR


def test_a_refused_connection_is_connection_refused_and_not_retried() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    attempts, result = _call(f"http://127.0.0.1:{port}/v1", max_attempts=3)
    assert _kinds(attempts) == ["connection_refused"]
    assert isinstance(result, ProviderError)


# --- Azure-style URLs -------------------------------------------------------------------------

AZURE_QUERY = "api-version=2024-10-21"


def test_an_azure_url_keeps_its_query_and_sends_the_key_in_its_header() -> None:
    origin = Recorder(models={"data": [{"id": "mock/expert", "pricing": {
        "prompt": "0.000001", "completion": "0.000002"}}]})
    with LoopServer(origin) as up:
        base = f"http://127.0.0.1:{up.port}/openai/deployments/gpt-4o?{AZURE_QUERY}"
        cfg = config(base, pricing="live").model_copy(update={"api_key_header": "api-key"})
        attempts: list[Attempt] = []

        async def go() -> None:
            async with build_client(cfg) as client:
                prov = provider(cfg, client)
                await prov.prepare_pricing(["mock/expert"])
                await prov.fetch_balance()
                await prov.complete(request(), attempts.append)

        asyncio.run(go())
    assert [h.target for h in origin.heads] == [
        f"/openai/deployments/gpt-4o/models?{AZURE_QUERY}",
        f"/openai/deployments/gpt-4o/key?{AZURE_QUERY}",
        f"/openai/deployments/gpt-4o/chat/completions?{AZURE_QUERY}",
    ]
    assert all(h.headers["api-key"] == KEY for h in origin.heads)
    assert all("authorization" not in h.headers for h in origin.heads)
    assert _kinds(attempts) == ["ok"]


# --- before the first call --------------------------------------------------------------------

def test_an_unreachable_price_list_halts_naming_the_url_and_the_cause() -> None:
    async def go() -> None:
        cfg = config("http://provider.gate-test.invalid/v1", pricing="live")
        async with build_client(cfg) as client:
            await live_prices("p", client, "http://provider.gate-test.invalid/v1?v=1",
                              ["mock/expert"])

    with pytest.raises(CircuitBreakerError) as caught:
        asyncio.run(go())
    message = str(caught.value)
    assert "GET http://provider.gate-test.invalid/v1/models?v=1" in message
    assert "dns_error" in message
