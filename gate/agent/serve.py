"""The loopback server of agent-program trials: the recording endpoint and the MCP tool server on
one ephemeral port of 127.0.0.1, served by uvicorn inside gate's own event loop (so the endpoint
calls the run's provider objects directly).

One ``TrialServer`` serves every trial of a run (started with the run's first program trial,
closed with the run's cells: nothing is left listening). Each trial is registered for exactly
as long as it runs, under two paths of its own:

    http://127.0.0.1:PORT/trial/ROUTE/v1    the endpoint (the trial's bearer token required)
    http://127.0.0.1:PORT/mcp/SECRET        its tools (the unguessable path is the credential)

A path of a trial that is not running answers 404; so the endpoint, token, MCP server and
accounting stay per trial while the server, its imports and its start are paid once.
``serve_trial`` is a server for one trial alone.
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
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gate.agent.endpoint import TrialSession, endpoint_routes
from gate.agent.mcp_tools import REQUESTING, SCOPE_KEY, tool_server

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 5.0
LOOPBACK_ONLY = TransportSecuritySettings(  # what the mcp SDK sets for a 127.0.0.1 server
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
)


@dataclass(frozen=True)
class Served:
    port: int
    base_url: str  # http://127.0.0.1:PORT/trial/ROUTE/v1
    mcp_url: str  # http://127.0.0.1:PORT/mcp/SECRET


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (gate's process owns SIGINT/SIGTERM), ready and
    stopped by events rather than 0.1 s polling loops."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_now = asyncio.Event()
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # the Date header uvicorn keeps current
        await self.exit_now.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown less its fixed 0.1 s pause after asking the connections to close
        (a per-trial server paid it once per trial): an idle connection is gone one loop
        iteration after it is asked; one still answering is waited for as uvicorn waits, up to
        ``timeout_graceful_shutdown``."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await asyncio.sleep(0)  # the closed transports' connection_lost callbacks run
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                await self._wait_tasks_to_complete()
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="the trials' endpoint stopped")
        if not self.force_exit:
            await self.lifespan.shutdown()


class _McpRoute:
    """The MCP transport for the trial a secret path names; 404 for any other path."""

    def __init__(self, trials: dict[str, TrialSession],
                 manager: StreamableHTTPSessionManager) -> None:
        self.trials = trials
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = self.trials.get(str(scope.get("path_params", {}).get("secret", "")))
        if session is None:
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        session.contact()
        scope[SCOPE_KEY] = session
        token = REQUESTING.set(session)
        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            REQUESTING.reset(token)


class TrialServer:
    """One loopback server for many trials (see the module docstring)."""

    def __init__(self) -> None:
        self._routes: dict[str, TrialSession] = {}
        self._secrets: dict[str, TrialSession] = {}
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self.port = 0

    async def start(self) -> None:
        manager = StreamableHTTPSessionManager(app=tool_server(), json_response=True,
                                               stateless=True, security_settings=LOOPBACK_ONLY)
        app = Starlette(routes=[Route("/mcp/{secret}", _McpRoute(self._secrets, manager)),
                                *endpoint_routes(self._route)],
                        lifespan=lambda _: manager.run())
        self._sock = _listening_socket()
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                ws="none", http="httptools", timeout_graceful_shutdown=1,
                                proxy_headers=False)  # loopback: no proxy's headers to trust
        self._server = server = _Server(config)
        self._task = task = asyncio.create_task(server.serve(sockets=[self._sock]))
        ready = asyncio.create_task(server.ready.wait())
        try:
            await asyncio.wait([ready, task], return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            await self.aclose()
            raise
        finally:
            ready.cancel()
        if not server.ready.is_set():  # the serving task ended during startup
            self._server = self._task = None
            self._sock.close()
            task.result()  # raise what it raised
            raise RuntimeError("the trials' endpoint stopped during startup")

    def _route(self, route: str) -> TrialSession | None:
        session = self._routes.get(route)
        if session is not None:
            session.contact()
        return session

    @contextlib.asynccontextmanager
    async def trial(self, session: TrialSession) -> AsyncIterator[Served]:
        """Serve ``session`` under paths of its own until the block exits."""
        if self._server is None:
            raise RuntimeError("the trials' server is not running")
        route, secret = secrets.token_urlsafe(12), secrets.token_urlsafe(16)
        self._routes[route], self._secrets[secret] = session, session
        try:
            yield Served(self.port, f"http://127.0.0.1:{self.port}/trial/{route}/v1",
                         f"http://127.0.0.1:{self.port}/mcp/{secret}")
        finally:
            del self._routes[route], self._secrets[secret]

    async def aclose(self) -> None:
        """Stop serving; nothing is left listening."""
        server, task, sock = self._server, self._task, self._sock
        self._server = self._task = self._sock = None
        try:
            if server is not None and task is not None:
                await _stop(server, task)
        finally:
            if sock is not None:
                sock.close()


@contextlib.asynccontextmanager
async def serve_trial(session: TrialSession) -> AsyncIterator[Served]:
    """A server for one trial, until the block exits."""
    server = TrialServer()
    await server.start()
    try:
        async with server.trial(session) as served:
            yield served
    finally:
        await server.aclose()


def _listening_socket() -> socket.socket:
    """The listener. Its protocol is named: asyncio turns Nagle's algorithm off only for
    sockets whose ``proto`` is TCP, and accepted sockets inherit the listener's. Left on, a
    response written in two parts (headers, body) waits for the client's delayed ACK: about
    40 ms per MCP tool call on Linux."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
    except OSError:
        sock.close()
        raise
    return sock


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
        log.warning("the trials' endpoint failed while stopping", exc_info=True)


async def _force(server: _Server, task: asyncio.Task[None]) -> None:
    server.force_exit = True
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
