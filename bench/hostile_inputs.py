"""Figures for hostile inputs: how long the YAML loader takes to refuse each kind of bomb, and
how much of a 50 MB response body the capped reader takes in (and the memory it peaks at).

Usage: python bench/hostile_inputs.py
"""

from __future__ import annotations

import asyncio
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from gate.config.yamlio import LIMITS, parse_yaml
from gate.errors import ConfigError
from gate.providers.capped import ResponseTooLarge, send_capped
from gate.providers.transport import GateClient

BODY = 50 * 1024 * 1024
CAP = 8 * 1024 * 1024


def bombs() -> dict[str, str]:
    laughs = 'lol0: &lol0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in range(1, 9):
        laughs += f"lol{level}: &lol{level} [" + ",".join([f"*lol{level - 1}"] * 9) + "]\n"
    return {
        "billion laughs (9**9 strings)": laughs,
        "nesting 100000 deep": "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "400,000 nodes in one list (800 KB)": "a: [" + ",".join(["0"] * 400_000) + "]\n",
        "100 MB file": "a: " + "x" * (100 * 1024 * 1024) + "\n",
    }


def yaml_figures() -> None:
    print(f"YAML limits: {LIMITS}")
    for name, text in bombs().items():
        started = time.perf_counter()
        try:
            parse_yaml(text, "hostile.yaml")
            verdict = "ACCEPTED"
        except ConfigError as exc:
            verdict = str(exc.problems[0])
        print(f"  {name}: {time.perf_counter() - started:.3f} s -> {verdict}")


class _Huge(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sent = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        block = b" " * 65536
        try:
            for _ in range(BODY // len(block)):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                _Huge.sent += len(block)
        except OSError:
            pass


def body_figures() -> None:
    for name in ("gate's client (GateClient)", "a plain httpx.AsyncClient"):
        _Huge.sent = 0
        body_figure(name, gate_client=name.startswith("gate"))


def body_figure(name: str, *, gate_client: bool) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Huge)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    async def go() -> int:
        client = (GateClient(1, httpx.Timeout(30.0)) if gate_client
                  else httpx.AsyncClient())
        async with client:
            try:
                await send_capped(client, "GET", url, max_bytes=CAP)
            except ResponseTooLarge as exc:
                return exc.received
        return -1

    tracemalloc.start()
    started = time.perf_counter()
    received = asyncio.run(go())
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    server.shutdown()
    server.server_close()
    print(f"50 MB body through {name}, cap {CAP} bytes: read {received} bytes, peak Python memory "
          f"{peak / 2**20:.1f} MiB, server got {_Huge.sent / 2**20:.1f} MiB into the socket "
          f"before the client hung up, {elapsed:.2f} s")


if __name__ == "__main__":
    yaml_figures()
    body_figures()
