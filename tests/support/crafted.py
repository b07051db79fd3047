"""A loopback HTTP server that answers with crafted responses (not a test module).

``Crafted(routes)``: ``routes`` maps ``"GET /v1/models"`` or ``"POST /v1/chat/completions"`` to a
list of (status, JSON body) answered in order (the last one repeats). Every request is kept
(method, path, headers, parsed body) so tests can read what the client sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None


@dataclass
class Crafted:
    routes: dict[str, list[tuple[int, Any]]]
    seen: list[Seen] = field(default_factory=list)

    def __enter__(self) -> Crafted:
        crafted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with crafted.lock:
                    crafted.seen.append(Seen(method, self.path, dict(self.headers), body))
                    queue = crafted.routes.get(f"{method} {self.path}") or [(404, {"error": "no"})]
                    status, payload = queue[0]
                    if len(queue) > 1:
                        queue.pop(0)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def bodies(self, route: str) -> list[Any]:
        method, path = route.split(" ", 1)
        return [s.body for s in self.seen if s.method == method and s.path == path]

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def completion(
    message: dict[str, Any], finish: str | None = "stop", *, prompt: int = 100,
    completion_tokens: int = 10, cached: int | None = None, cost: float | None = None,
    response_id: str = "gen-crafted",
) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                             "total_tokens": prompt + completion_tokens}
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if cost is not None:
        usage["cost"] = cost
    return {"id": response_id, "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", **message},
                         "finish_reason": finish}],
            "usage": usage}
