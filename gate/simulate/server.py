"""``MockServer``: an OpenAI-compatible HTTP server on loopback, with fault injection.

It serves any in-process ``Provider`` (the simulated models of ``gate.simulate.models``) over real
HTTP, so the smoke test and the demo exercise the same client path as a paid provider::

    with MockServer(backend, prices, faults=FaultConfig(rate=0.2), seed=7) as srv:
        srv.base_url            # "http://127.0.0.1:PORT/v1"

Endpoints: ``POST /v1/chat/completions`` (JSON, or server-sent events with ``stream: true``;
``tool_choice`` honoured), ``GET /v1/models`` and ``GET /v1/models/{id}`` (OpenAI's model objects
with the prices, OpenRouter-shaped), ``GET /v1/key`` (``limit_remaining``), ``GET /v1/credits``.

Faults are deterministic from the seed: completion request number ``n`` draws from
``Random(f"{seed}:{n}")``; with probability ``faults.rate`` it gets one of ``faults.kinds``:
``402``, ``429`` (with ``Retry-After``), ``500``/``502``/``503``, ``error_in_body`` (HTTP 200
with an error object), ``malformed_json``, ``stall`` (no answer for ``stall_s``: set it above the
client timeout). ``payment_required_after: N`` gives every completion request after the N-th a 402.

Every completion request received and every fault injected is logged, in memory
(``requests``, ``fault_counts()``, ``expected_error_counts()``) and as JSONL in
``fault_log_path``, so tests compare them kind by kind with the client's own accounting.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from gate.config.schema import FaultConfig, Price
from gate.providers.base import ChatRequest, ChatResponse, ErrorKind, Provider
from gate.simulate.handler import Handler

logger = logging.getLogger(__name__)

FAULT_ERROR_KIND: dict[str, ErrorKind] = {
    "402": ErrorKind.PAYMENT_REQUIRED,
    "429": ErrorKind.RATE_LIMITED,
    "500": ErrorKind.SERVER_ERROR,
    "502": ErrorKind.SERVER_ERROR,
    "503": ErrorKind.SERVER_ERROR,
    "error_in_body": ErrorKind.ERROR_IN_BODY,
    "malformed_json": ErrorKind.MALFORMED_RESPONSE,
    "stall": ErrorKind.TIMEOUT,
}
"""The ``ErrorKind`` the client must record for each injected fault."""


@dataclass(frozen=True)
class RequestRecord:
    """One completion request as the server saw it."""

    seq: int  # 1-based arrival order
    model: str
    ts: float
    fault: str | None  # the injected fault, or None when answered normally
    throttled: bool = False  # refused by ``enforce_limit`` (not a fault)


@dataclass(frozen=True)
class ServerOptions:
    """Knobs of the simulated service beyond faults."""

    latency_s: float = 0.0  # added to every normal answer
    stall_s: float = 30.0  # how long a ``stall`` fault keeps the client waiting
    retry_after_s: float = 1.0  # ``Retry-After`` sent with an injected 429
    limit_remaining: float | None = None  # ``GET /key``: None = unlimited key
    api_key: str | None = None  # when set, completion/key/credits require this bearer key
    cost_factor: float = 1.0  # ``usage.cost`` = computed cost x this (test divergence flags)
    enforce_limit: tuple[int, float] | None = None  # (requests, per_s): 429 beyond it
    clock: Callable[[], float] = time.monotonic  # the clock ``enforce_limit`` reads (tests)


class MockServer:
    """The OpenAI-compatible loopback server; a context manager (``start``/``stop``)."""

    def __init__(
        self,
        backend: Provider,
        prices: Mapping[str, Price],
        faults: FaultConfig | None = None,
        seed: int = 0,
        fault_log_path: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        options: ServerOptions | None = None,
    ) -> None:
        self.backend = backend
        self.prices = dict(prices)
        self.faults = faults or FaultConfig()
        self.seed = seed
        self._instance = os.urandom(8).hex()  # response ids never repeat across server starts
        self.created = int(time.time())  # ``created`` of every model in ``/v1/models``
        self.options = options or ServerOptions()
        self.requests: list[RequestRecord] = []
        self.events: list[dict[str, Any]] = []
        self._fault_log_path = Path(fault_log_path) if fault_log_path else None
        self._log_file: IO[str] | None = None
        self._address = (host, port)
        self._lock = threading.Lock()
        self._arrivals: deque[float] = deque()
        self._spent = 0.0
        self.stopping = threading.Event()
        self._httpd: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (valid once started)."""
        if self._httpd is None:
            raise RuntimeError("MockServer is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> MockServer:
        """Bind, start the backend's event loop thread and the HTTP thread."""
        if self._fault_log_path is not None:
            self._log_file = self._fault_log_path.open("a", encoding="utf-8")
        self._loop = asyncio.new_event_loop()
        self._httpd = _Server(self._address, Handler, self)
        self._threads = [
            threading.Thread(target=self._loop.run_forever, name="mock-loop", daemon=True),
            threading.Thread(
                target=self._httpd.serve_forever, args=(0.02,), name="mock-http", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()
        logger.info("mock server listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections, stop the loop, close the log."""
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(timeout=5)
        if self._loop is not None:
            self._loop.close()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- accounting ------------------------------------------------------------------------

    def fault_counts(self) -> Counter[str]:
        """Injected faults by fault kind (``"429"``, ``"stall"``, ...)."""
        with self._lock:
            return Counter(r.fault for r in self.requests if r.fault is not None)

    def expected_error_counts(self) -> Counter[str]:
        """Injected faults translated to the ``ErrorKind`` values the client must count."""
        out: Counter[str] = Counter()
        for fault, n in self.fault_counts().items():
            out[FAULT_ERROR_KIND[fault].value] += n
        return out

    @property
    def throttled(self) -> int:
        """Requests refused with 429 by ``enforce_limit``."""
        with self._lock:
            return sum(1 for r in self.requests if r.throttled)

    @property
    def spent_usd(self) -> float:
        with self._lock:
            return self._spent

    # --- used by the request handler -------------------------------------------------------

    def admit(self, model: str) -> RequestRecord:
        """Number one completion request, decide its fate, and log it."""
        with self._lock:
            seq = len(self.requests) + 1
            now = self.options.clock()
            throttled = self._over_limit(now)
            fault = None if throttled else self._draw_fault(seq)
            record = RequestRecord(seq, model, time.time(), fault, throttled)
            self.requests.append(record)
            self._log({"event": "request", **asdict(record)})
            if fault is not None:
                self._log({"event": "fault", "seq": seq, "kind": fault,
                           "error_kind": FAULT_ERROR_KIND[fault].value})
            return record

    def note(self, event: str, **fields: Any) -> None:
        """Log something else worth knowing (a backend error, a bad request)."""
        with self._lock:
            self._log({"event": event, **fields})

    def answer(self, request: ChatRequest) -> ChatResponse:
        """Run the backend on the server's event loop (blocking the handler thread)."""
        if self._loop is None:
            raise RuntimeError("MockServer is not running")
        future = asyncio.run_coroutine_threadsafe(
            self.backend.complete(request, on_attempt=_discard), self._loop
        )
        return future.result()

    def charge(self, cost: float) -> None:
        with self._lock:
            self._spent += cost

    def response_id(self, seq: int) -> str:
        digest = hashlib.sha256(f"{self.seed}:{self._instance}:{seq}".encode()).hexdigest()
        return f"gen-{digest[:24]}"

    def _draw_fault(self, seq: int) -> str | None:
        after = self.faults.payment_required_after
        if after is not None and seq > after:
            return "402"
        if self.faults.rate <= 0 or not self.faults.kinds:
            return None
        rng = random.Random(f"{self.seed}:{seq}")
        if rng.random() >= self.faults.rate:
            return None
        return str(rng.choice(self.faults.kinds))

    def _over_limit(self, now: float) -> bool:
        if self.options.enforce_limit is None:
            return False
        requests, per_s = self.options.enforce_limit
        while self._arrivals and self._arrivals[0] <= now - per_s:
            self._arrivals.popleft()
        if len(self._arrivals) >= requests:
            return True
        self._arrivals.append(now)
        return False

    def _log(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self._log_file is not None:
            self._log_file.write(json.dumps(event, sort_keys=True) + "\n")
            self._log_file.flush()


def _discard(_: object) -> None:
    """The backend's attempts are not audited: the client audits its own."""


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its MockServer and can cut its open connections."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type[Handler], mock: MockServer) -> None:
        self.mock = mock
        self.connections: set[Any] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, handler)

    def close_connections(self) -> None:
        with self.conn_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("mock server: connection error from %s", client_address, exc_info=True)
