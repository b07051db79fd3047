"""gate's transport: one verifying TLS context per run, and every connection slot freed."""

from __future__ import annotations

import asyncio
import ssl
import warnings

import httpx

from gate.providers.testing import EchoBackend
from gate.providers.transport import GateTransport
from gate.simulate.server import MockServer


def test_the_pool_verifies_tls_with_one_context() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated httpx path
        transport = GateTransport(32)
    assert transport.pool.ssl_context is transport.ssl_context
    assert transport.pool.limit == 32
    assert transport.ssl_context.verify_mode is ssl.CERT_REQUIRED
    assert transport.ssl_context.check_hostname


def test_transport_reuses_connections_and_frees_every_slot() -> None:
    transport = GateTransport(8)
    with MockServer(EchoBackend(), {}, seed=1) as srv:

        async def go() -> None:
            async with httpx.AsyncClient(transport=transport) as client:
                replies = await asyncio.gather(*(client.get(f"{srv.base_url}/models")
                                                 for _ in range(64)))
                assert all(r.status_code == 200 for r in replies)
                assert all(r.json()["object"] == "list" for r in replies)
                assert transport.pool.in_flight == 0  # every response closed, every slot freed
                assert transport.pool.connections_made <= 8  # kept alive and reused

        asyncio.run(go())
