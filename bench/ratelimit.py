"""The rate limiter under load: share of the declared limit used, and self-caused 429s.

A MockServer enforces ``requests`` per ``per_s`` by arrival time (a 429 beyond it) and answers
after ``latency``; the provider declares the same limit and sends ``calls`` calls from
``concurrency`` workers, while ``--hogs`` processes burn CPU beside it (a busy CI box); the
server runs in its own process. Prints:
the calls the server throttled (self-caused 429s; target 0) and the share of the limit used,
``(calls - 1) / (span of arrivals x requests / per_s)`` (target >= 95 %). The limiter holds a
request's place from its grant until ``per_s`` after its response (what makes it safe whatever
the delays), so the share is about ``per_s / (per_s + latency seen by the client)``: a 20 s
window is the default here (providers' windows are usually a minute); a 2 s one under heavy
load shows that cost.

    .venv/bin/python bench/ratelimit.py [--calls 200] [--requests 100] [--per-s 20] [--hogs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import time
from typing import Any

from gate.config.schema import Price, ProviderConfig, RateLimit, RetryPolicy
from gate.providers.base import Attempt, ChatRequest
from gate.providers.budget import Budget
from gate.providers.factory import build_client, build_provider, prepare_pricing
from gate.providers.testing import EchoBackend
from gate.simulate.server import MockServer, ServerOptions

MODEL = "mock/expert"
PRICES = {MODEL: Price(prompt=0.000001, completion=0.000002)}
ENV = {"BENCH_KEY": "sk-bench-0000"}


def _serve(options: ServerOptions, queue: Any, stop: Any) -> None:
    """The server in its own process; sends back (throttled, arrival times) when stopped."""
    with MockServer(EchoBackend(), PRICES, options=options) as srv:
        queue.put(srv.base_url)
        stop.wait()
        queue.put((srv.throttled, sorted(r.ts for r in srv.requests if not r.throttled)))


def _hog(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


async def _run(base_url: str, args: argparse.Namespace) -> list[Attempt]:
    limit = RateLimit(requests=args.requests, per_s=args.per_s)
    cfg = ProviderConfig(type="openai", base_url=base_url, api_key_env="BENCH_KEY",
                         pricing="live", concurrency=args.concurrency, timeout_s=30,
                         rate_limit=limit, retry=RetryPolicy(initial_wait_s=0.05, jitter_s=0.0,
                                                             cooldown_s=0.0))
    attempts: list[Attempt] = []
    async with build_client(cfg) as client:
        prov = build_provider("bench", cfg, client, budget=Budget(1e6), notice=lambda _: None,
                              env=ENV)
        await prepare_pricing(prov, [MODEL])
        queue = iter(range(args.calls))

        async def worker() -> None:
            for i in queue:
                request = ChatRequest(MODEL, [{"role": "user", "content": f"q {i}"}], [], 1, 64)
                await prov.complete(request, attempts.append)

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return attempts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--per-s", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1,
                        help="CPU-burning processes beside the run (default: one per CPU)")
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    hogs = [ctx.Process(target=_hog, args=(stop,), daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    options = ServerOptions(latency_s=args.latency_ms / 1000,
                            enforce_limit=(args.requests, args.per_s))
    queue, done = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(options, queue, done), daemon=True)
    server.start()
    try:
        base_url = queue.get(timeout=60)
        start = time.monotonic()
        attempts = asyncio.run(_run(base_url, args))
        wall = time.monotonic() - start
        done.set()
        throttled, arrivals = queue.get(timeout=60)
    finally:
        stop.set()
        done.set()
        for proc in [*hogs, server]:
            proc.join(timeout=10)
    span = arrivals[-1] - arrivals[0]
    share = (len(arrivals) - 1) / (span * args.requests / args.per_s)
    failed = sum(1 for a in attempts if a.outcome != "ok")
    print(f"{args.calls} calls, limit {args.requests} per {args.per_s:g} s enforced by arrival "
          f"time, latency {args.latency_ms:g} ms, concurrency {args.concurrency}, "
          f"{args.hogs} CPU hog(s): {wall:.1f} s")
    print(f"self-caused 429s: {throttled} (target 0); failed attempts: {failed}")
    print(f"share of the limit used: {share:.1%} (target >= 95%)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
