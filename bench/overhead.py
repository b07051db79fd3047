"""Overhead of the gate's provider path (``OpenAICompatProvider``) against the loopback MockServer.

(a) The gate's own time per call, zero simulated latency. Method: the provider's client is
    built like ``factory.build_client``, with httpx event hooks timing each POST (the whole HTTP
    exchange: the transport, the loopback socket and the server, until the response headers).
    Per call, gate time = wall time of ``provider.complete()`` minus that time; it
    is everything the gate adds around the request: pricing
    lookup, budget reserve/settle, rate limiter and cooldown checks, tenacity, JSON encoding of
    the body, classification, parsing, the Attempt record. Reported as p50/p95 over N calls
    after a warm-up. For context it also prints ``complete()`` wall time minus the server's own
    handling time (``X-Gate-Server-Time``), which adds httpx and the loopback round trip.
    Target: p50 <= 1 ms.

(b) Throughput: 2,000 calls with 50 ms simulated server latency, 32 at a time, against the ideal
    ``calls x latency / concurrency``. Target: <= 1.15x (1.2x on a quiet machine for (c)).

(c) As (b), with the engine's records: every attempt appended to audit.jsonl, and every call
    recorded as a finished trial in trials.jsonl the way the engine does it: a concurrency slot
    per call (as ``Engine.run_cells``), and the trial made durable after its audit lines, outside
    the slot (``JsonlWriter.commit_after``: group commit, fsync in a worker thread).
    ``--fsync-on-loop`` records the old way (a blocking fsync per line on the loop's thread).

The server runs in a child process (``--in-process`` to share the process and its GIL, as the
smoke test does), so the figures are the client's, not Python's HTTP server competing with it.

``--transport httpx`` runs the same with plain httpx (its own pool, one shared client, as many
connections as the concurrency) instead of gate's client (httpx over aiohttp): the comparison
that chose the transport.

    .venv/bin/python bench/overhead.py [--calls-a 2000] [--calls-b 2000] [--in-process] [--skip-a]
        [--transport gate|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from gate.config.schema import Price, ProviderConfig
from gate.engine.runner import now_iso
from gate.providers.base import Attempt, ChatRequest
from gate.providers.budget import Budget
from gate.providers.factory import build_client, build_provider, prepare_pricing
from gate.providers.testing import EchoBackend
from gate.providers.transport import ssl_context
from gate.records import AuditAttempt, Trial
from gate.rundir.jsonl import JsonlWriter
from gate.simulate.server import MockServer, ServerOptions

MODEL = "mock/expert"
PRICES = {MODEL: Price(prompt=0.000001, completion=0.000002)}
ENV = {"BENCH_KEY": "sk-bench-0000"}


class Timer:
    """httpx event hooks timing every POST until its response headers (and the server's time)."""

    def __init__(self) -> None:
        self.post_s: list[float] = []
        self.server_s: list[float] = []
        self._start: dict[int, float] = {}

    async def request(self, request: httpx.Request) -> None:
        self._start[id(request)] = time.perf_counter()

    async def response(self, response: httpx.Response) -> None:
        start = self._start.pop(id(response.request))
        if response.request.method == "POST":
            self.post_s.append(time.perf_counter() - start)
            self.server_s.append(float(response.headers.get("x-gate-server-time", "0")))


def _serve(latency_s: float, queue: Any, stop: Any) -> None:
    with MockServer(EchoBackend(), PRICES, options=ServerOptions(latency_s=latency_s)) as srv:
        queue.put(srv.base_url)
        stop.wait()


@contextmanager
def server(latency_s: float, in_process: bool) -> Iterator[str]:
    """Base URL of a MockServer with ``latency_s``, in this process or a child."""
    if in_process:
        with MockServer(EchoBackend(), PRICES, options=ServerOptions(latency_s=latency_s)) as srv:
            yield srv.base_url
        return
    ctx = mp.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(latency_s, queue, stop), daemon=True)
    proc.start()
    try:
        yield queue.get(timeout=30)
    finally:
        stop.set()
        proc.join(timeout=10)


TRANSPORT = "gate"  # or "httpx": plain httpx (set by --transport)


def _setup(
    base_url: str, concurrency: int, timed: bool = False,
) -> tuple[ProviderConfig, httpx.AsyncClient, Timer]:
    """The provider config and a client built like ``factory.build_client`` (or plain httpx)."""
    cfg = ProviderConfig(type="openai", base_url=base_url, api_key_env="BENCH_KEY",
                         pricing="live", concurrency=concurrency, timeout_s=30)
    timeout = httpx.Timeout(30.0)
    client: httpx.AsyncClient
    if TRANSPORT == "httpx":
        client = httpx.AsyncClient(timeout=timeout, verify=ssl_context(), limits=httpx.Limits(
            max_connections=concurrency, max_keepalive_connections=concurrency))
    else:
        client = build_client(cfg)
    timer = Timer()
    if timed:
        client.event_hooks = {"request": [timer.request], "response": [timer.response]}
    return cfg, client, timer


def _request(i: int) -> ChatRequest:
    messages = [{"role": "system", "content": "You are an agent. " * 20},
                {"role": "user", "content": f"task {i}: fix the incident"}]
    return ChatRequest(MODEL, messages, [], 1234, 256)


async def own_time(base_url: str, calls: int) -> tuple[list[float], list[float]]:
    """Per call: gate time (wall - post) and wall - server-reported time, in seconds."""
    cfg, client, timed = _setup(base_url, 1, timed=True)
    async with client:
        prov = build_provider("bench", cfg, client, budget=Budget(1e6), notice=print, env=ENV)
        await prepare_pricing(prov, [MODEL])
        for i in range(50):  # warm-up: connection, caches
            await prov.complete(_request(i), lambda a: None)
        timed.post_s.clear()
        timed.server_s.clear()
        walls = []
        for i in range(calls):
            start = time.perf_counter()
            await prov.complete(_request(i), lambda a: None)
            walls.append(time.perf_counter() - start)
    gate = [w - p for w, p in zip(walls, timed.post_s, strict=True)]
    beyond_server = [w - s for w, s in zip(walls, timed.server_s, strict=True)]
    return gate, beyond_server


async def throughput(base_url: str, calls: int, concurrency: int) -> float:
    """Wall time of ``calls`` calls, ``concurrency`` at a time."""
    cfg, client, _ = _setup(base_url, concurrency)
    async with client:
        prov = build_provider("bench", cfg, client, budget=Budget(1e6), notice=print, env=ENV)
        await prepare_pricing(prov, [MODEL])
        queue = iter(range(calls))

        async def worker() -> None:
            for i in queue:
                await prov.complete(_request(i), lambda a: None)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


def audit_record(a: Attempt, model: str = MODEL) -> AuditAttempt:
    """The audit line the engine writes for an attempt (bench/inspect_cpu.py uses it too)."""
    return AuditAttempt(
        ts=now_iso(), arm="bench", model=model, task="t", round=1, step=1, attempt=a.attempt,
        request_sha256=a.request_sha256, outcome=a.outcome, http_status=a.http_status,
        response_id=a.response_id, tokens_in=a.prompt_tokens, tokens_out=a.completion_tokens,
        cost_reported_usd=a.cost_reported_usd, cost_computed_usd=a.cost_computed_usd,
        latency_s=a.latency_s, attempt_id=a.attempt_id or None, finish_reason=a.finish_reason)


def trial_record(i: int, response_id: str, model: str = MODEL) -> Trial:
    """A finished trial of one call, as the engine records it."""
    return Trial(trial_id=f"bench/t/r{i}", arm="bench", model=model, task="t", round=i, seed=i,
                 ts=now_iso(), wall_s=0.0, status="scored", trace_id="0" * 32,
                 response_ids=[response_id])


async def with_records(base_url: str, calls: int, concurrency: int, on_loop: bool) -> float:
    """As ``throughput``, writing audit and trial records the engine's way."""
    cfg, client, _ = _setup(base_url, concurrency)
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as tmp:
        audit = JsonlWriter(Path(tmp) / "audit.jsonl", AuditAttempt)
        trials = JsonlWriter(Path(tmp) / "trials.jsonl", Trial)
        async with client:
            prov = build_provider("bench", cfg, client, budget=Budget(1e6), notice=print,
                                  env=ENV)
            await prepare_pricing(prov, [MODEL])

            def on_attempt(a: Attempt) -> None:
                line = audit_record(a)
                audit.write(line) if on_loop else audit.append(line)

            slots = asyncio.Semaphore(concurrency)

            async def cell(i: int) -> None:  # as the engine's run_cells: a slot per call ...
                async with slots:
                    response = await prov.complete(_request(i), on_attempt)
                record = trial_record(i, response.response_id)
                if on_loop:
                    trials.write(record)
                else:  # ... and the trial made durable outside it, after its audit lines
                    await trials.commit_after(audit, record)

            start = time.perf_counter()
            await asyncio.gather(*(cell(i) for i in range(calls)))
            wall = time.perf_counter() - start
        audit.close()
        trials.close()
    return wall


def _ms(values: list[float], q: float) -> str:
    return f"{statistics.quantiles(values, n=100)[int(q) - 1] * 1000:.3f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls-a", type=int, default=2000)
    parser.add_argument("--calls-b", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--in-process", action="store_true", help="server in this process")
    parser.add_argument("--fsync-on-loop", action="store_true",
                        help="(c) records the old way: a blocking fsync per line on the loop")
    parser.add_argument("--skip-a", action="store_true", help="skip (a)")
    parser.add_argument("--transport", choices=["gate", "httpx"], default="gate",
                        help="gate's client (httpx over aiohttp) or plain httpx")
    args = parser.parse_args(argv)
    global TRANSPORT
    TRANSPORT = args.transport
    label = "gate's client (aiohttp under httpx's API)" if TRANSPORT == "gate" else "plain httpx"
    print(f"transport: {label}")
    if not args.skip_a:
        _part_a(args)
    latency = args.latency_ms / 1000.0
    with server(latency, args.in_process) as url:
        cpu = time.process_time()
        wall = asyncio.run(throughput(url, args.calls_b, args.concurrency))
        cpu = time.process_time() - cpu
    ideal = args.calls_b * latency / args.concurrency
    ratio = wall / ideal
    print(f"(b) {args.calls_b} calls at {args.latency_ms:g} ms latency, concurrency "
          f"{args.concurrency}: {wall:.2f} s vs ideal {ideal:.2f} s = {ratio:.3f}x  "
          f"(target <= 1.15x: {'met' if ratio <= 1.15 else 'NOT met'})")
    print(f"    client CPU {cpu:.2f} s = {cpu / args.calls_b * 1000:.3f} ms per call")
    with server(latency, args.in_process) as url:
        cpu = time.process_time()
        wall = asyncio.run(with_records(url, args.calls_b, args.concurrency, args.fsync_on_loop))
        cpu = time.process_time() - cpu
    ratio = wall / ideal
    how = "fsync on the loop" if args.fsync_on_loop else "fsync off the loop"
    print(f"(c) the same with audit + trial records ({how}): {wall:.2f} s vs ideal "
          f"{ideal:.2f} s = {ratio:.3f}x  (target <= 1.2x on a quiet machine: "
          f"{'met' if ratio <= 1.2 else 'NOT met'})")
    print(f"    client CPU {cpu:.2f} s = {cpu / args.calls_b * 1000:.3f} ms per call")
    print(f"    load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    return 0


def _part_a(args: argparse.Namespace) -> None:
    where = "this process" if args.in_process else "a child process"
    with server(0.0, args.in_process) as url:
        gate, beyond = asyncio.run(own_time(url, args.calls_a))
    p50 = statistics.median(gate)
    print(f"(a) gate's own time per call, {args.calls_a} calls, zero latency, server in {where}:")
    print(f"    p50 {p50 * 1000:.3f} ms, p95 {_ms(gate, 95)}  (target p50 <= 1 ms: "
          f"{'met' if p50 <= 0.001 else 'NOT met'})")
    print(f"    wall minus server handling time (adds httpx + loopback): "
          f"p50 {_ms(beyond, 50)}, p95 {_ms(beyond, 95)}")


if __name__ == "__main__":
    sys.exit(main())
