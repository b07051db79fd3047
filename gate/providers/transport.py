"""``ShardedTransport``: one httpx transport made of several small connection pools.

httpcore's pool does bookkeeping over all its connections on every request (and, for each idle
connection, a liveness ``poll``), so its cost per request grows with the square of its size:
at 32 connections it costs more CPU than the rest of the call. Several pools of
``per_shard`` connections, each request sent to the least-loaded one, keep the same total
concurrency at a small fraction of that cost. The client (and its single ``AsyncClient`` API)
is unchanged: this is only its transport. All the pools share one TLS context: loading the CA
store costs ~50 ms of CPU, once per run rather than once per pool.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import AsyncIterator, Callable

import httpx

PER_SHARD = 4


class _Tracked(httpx.AsyncByteStream):
    """A response body stream that reports once when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, done: Callable[[], None]) -> None:
        self._stream = stream
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._done is not None:
                self._done()
                self._done = None


class ShardedTransport(httpx.AsyncBaseTransport):
    """Spreads requests over ``ceil(connections / per_shard)`` pools, least-loaded first."""

    def __init__(
        self, connections: int, *, per_shard: int = PER_SHARD, keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        count = max(1, math.ceil(connections / per_shard))
        size = math.ceil(connections / count)
        limits = httpx.Limits(
            max_connections=size, max_keepalive_connections=size,
            keepalive_expiry=keepalive_expiry,
        )
        self.ssl_context = ssl_context or httpx.create_ssl_context()
        self._shards = [httpx.AsyncHTTPTransport(limits=limits, verify=self.ssl_context)
                        for _ in range(count)]
        self._load = [0] * count

    @property
    def shards(self) -> int:
        return len(self._shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._load)), key=self._load.__getitem__)
        self._load[index] += 1

        def done() -> None:
            self._load[index] -= 1

        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            done()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code, headers=response.headers,
            stream=_Tracked(response.stream, done), extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
