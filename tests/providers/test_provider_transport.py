"""gate's client: one verifying TLS context per run, ALPN offered, connections kept alive."""

from __future__ import annotations

import asyncio
import ssl

import httpx

from gate.providers.mockserver import MockServer
from gate.providers.testing import EchoBackend
from gate.providers.transport import GateClient


def test_the_client_verifies_tls_with_one_context_offering_http11() -> None:
    client = GateClient(32, httpx.Timeout(5.0))
    context = client.ssl_context
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert client.connections == 32


def test_client_reuses_connections() -> None:
    with MockServer(EchoBackend(), {}, seed=1) as srv:

        async def go() -> set[int]:
            client = GateClient(8, httpx.Timeout(5.0))
            async with client:
                replies = await asyncio.gather(*(client.get(f"{srv.base_url}/models")
                                                 for _ in range(64)))
                assert all(r.status_code == 200 for r in replies)
                assert all(r.json()["object"] == "list" for r in replies)
                return {r.extensions.get("gate_port", 0) for r in replies}

        asyncio.run(go())
