"""One trial's loopback server: the recording endpoint (``/v1/...``) and the MCP tool server
(``/mcp/<secret>``) on one ephemeral port of 127.0.0.1, served by uvicorn inside gate's own
event loop (so the endpoint calls the run's provider objects directly). Closed when the trial
ends: nothing is left listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import uvicorn

from gate.agent.endpoint import TrialSession, endpoint_routes
from gate.agent.mcp_tools import tool_server

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Served:
    port: int
    base_url: str  # http://127.0.0.1:PORT/v1
    mcp_url: str  # http://127.0.0.1:PORT/mcp/SECRET


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (gate's process owns SIGINT/SIGTERM), stopped by an
    event rather than a 0.1 s polling loop."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_now = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        await self.on_tick(0)  # the Date header uvicorn keeps current
        await self.exit_now.wait()


@contextlib.asynccontextmanager
async def serve_trial(session: TrialSession) -> AsyncIterator[Served]:
    """Serve the trial's endpoint and MCP server until the block exits."""
    path = f"/mcp/{secrets.token_urlsafe(16)}"
    app = tool_server(session).streamable_http_app(
        streamable_http_path=path, stateless_http=True, json_response=True,
        custom_starlette_routes=endpoint_routes(session),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", ws="none",
                            http="h11", timeout_graceful_shutdown=1)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn has a flag)
            await asyncio.sleep(0.002)
        if task.done():
            task.result()  # startup failed: raise what it raised
            raise RuntimeError("the trial's endpoint stopped during startup")
        yield Served(port, f"http://127.0.0.1:{port}/v1", f"http://127.0.0.1:{port}{path}")
    finally:
        try:
            await _stop(server, task)
        finally:
            sock.close()


async def _stop(server: _Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    server.exit_now.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_S)
    except asyncio.CancelledError:
        await _force(server, task)
        raise
    except TimeoutError:
        await _force(server, task)
    except Exception:  # a failure while stopping must not hide the trial's own outcome
        log.warning("the trial's endpoint failed while stopping", exc_info=True)


async def _force(server: _Server, task: asyncio.Task[None]) -> None:
    server.force_exit = True
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
