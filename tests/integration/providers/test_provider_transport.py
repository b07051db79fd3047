"""gate's client: one verifying TLS context per run, at most ``concurrency`` connections, kept
alive and reused; gate's own calls go to aiohttp without an httpx request or response per call,
and httpx's interface (``get``, event hooks, body decoding) still works over the same pool."""

from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest
from netfield import COMPLETION, LoopServer, Recorder
from provider_support import config, provider, request

from gate.providers.base import Attempt
from gate.providers.capped import send_capped
from gate.providers.factory import build_client
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


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("an httpx.Request or httpx.Response was built")


def test_a_provider_call_builds_no_httpx_request_or_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What most of a call's client CPU used to go to: gate's calls hand the request to aiohttp
    as it is (bench/inspect_cpu.py measures the CPU; this keeps the path)."""
    origin = Recorder()
    attempts: list[Attempt] = []
    with LoopServer(origin) as up:
        cfg = config(f"http://127.0.0.1:{up.port}/v1", concurrency=2)

        async def go() -> None:
            async with build_client(cfg) as client:
                prov = provider(cfg, client)
                monkeypatch.setattr(httpx.Request, "__init__", _refuse)
                monkeypatch.setattr(httpx.Response, "__init__", _refuse)
                await asyncio.gather(*(prov.complete(request(i), attempts.append)
                                       for i in range(4)))

        asyncio.run(go())
    assert [a.outcome for a in attempts] == ["ok"] * 4
    assert len(origin.heads) == 4


def test_event_hooks_see_every_request_and_response() -> None:
    """httpx's event hooks on the run's client still see gate's requests (they then go
    through httpx's ``send``, over the same aiohttp session)."""
    seen: list[str] = []
    origin = Recorder()
    with LoopServer(origin) as up:

        async def on_request(req: httpx.Request) -> None:
            seen.append(f"request {req.method} {req.url.path}")

        async def on_response(resp: httpx.Response) -> None:
            seen.append(f"response {resp.status_code}")

        async def go() -> bytes:
            async with GateClient(2, httpx.Timeout(5.0)) as client:
                client.event_hooks = {"request": [on_request], "response": [on_response]}
                answer = await send_capped(
                    client, "POST", f"http://127.0.0.1:{up.port}/v1/chat/completions",
                    max_bytes=1 << 20, content=b"{}", deadline_s=5.0)
                return answer.content

        content = asyncio.run(go())
    assert seen == ["request POST /v1/chat/completions", "response 200"]
    assert b"choices" in content


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_httpx_interface_decodes_compressed_bodies(encoding: str) -> None:
    with LoopServer(Recorder(encoding=encoding)) as up:

        async def go() -> object:
            async with GateClient(2, httpx.Timeout(5.0)) as client:
                reply = await client.post(f"http://127.0.0.1:{up.port}/v1/chat/completions",
                                          content=b"{}")
                return reply.json()

        assert asyncio.run(go()) == COMPLETION


def test_httpx_interface_and_provider_calls_share_one_pool() -> None:
    """httpx's interface (httpx-aiohttp) and gate's own calls (``GateClient.open``) use the same
    aiohttp session: one after the other, they reuse one connection."""
    origin = Recorder()
    with LoopServer(origin) as up:
        url = f"http://127.0.0.1:{up.port}/v1/chat/completions"

        async def go() -> list[int]:
            statuses: list[int] = []
            async with GateClient(1, httpx.Timeout(5.0)) as client:
                for _ in range(2):
                    short = await send_capped(client, "POST", url, max_bytes=1 << 20,
                                              content=b"{}", deadline_s=5.0)
                    statuses.append(short.status_code)
                    statuses.append((await client.post(url, content=b"{}")).status_code)
            return statuses

        assert asyncio.run(go()) == [200] * 4
        assert up.connections == 1
    assert len(origin.heads) == 4
