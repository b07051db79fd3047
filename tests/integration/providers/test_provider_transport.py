"""gate's client: one verifying TLS context per run, at most ``concurrency`` connections, kept
alive and reused."""

from __future__ import annotations

import asyncio
import ssl

import httpx
from netfield import LoopServer, Recorder

from gate.providers.transport import GateClient


def test_the_client_verifies_tls_with_one_context() -> None:
    client = GateClient(32, httpx.Timeout(5.0))
    context = client.ssl_context
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert client.connections == 32


def test_client_keeps_at_most_its_connections_and_reuses_them() -> None:
    origin = Recorder(models={"object": "list", "data": []})
    with LoopServer(origin) as srv:

        async def go() -> None:
            async with GateClient(8, httpx.Timeout(5.0)) as client:
                for _ in range(2):
                    replies = await asyncio.gather(*(
                        client.get(f"http://127.0.0.1:{srv.port}/v1/models") for _ in range(64)))
                    assert all(r.json()["object"] == "list" for r in replies)

        asyncio.run(go())
    assert len(origin.heads) == 128
    assert srv.connections <= 8  # kept alive and reused, never more than the limit
