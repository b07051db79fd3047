"""A loopback OTLP/HTTP traces receiver for the export tests: keeps every span it receives
(decoded with opentelemetry-proto) and the headers of each request; answers with a chosen
status and body, as a refusing collector does."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class Collector:
    """An OTLP/HTTP traces endpoint: keeps every span it receives, with its headers."""

    def __init__(self, status: int = 200, body: bytes = b"",
                 content_type: str = "application/x-protobuf") -> None:
        self.spans: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                outer.headers.append(dict(self.headers))
                if outer.status == 200:
                    req = ExportTraceServiceRequest()
                    req.ParseFromString(data)
                    for rs in req.resource_spans:
                        for ss in rs.scope_spans:
                            outer.spans.extend(ss.spans)
                self.send_response(outer.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Collector:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def attrs(span: Any) -> dict[str, Any]:
    """A decoded span's attributes as plain values (arrays as lists of strings)."""
    out: dict[str, Any] = {}
    for kv in span.attributes:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = (list(x.string_value for x in v.array_value.values)
                       if kind == "array_value" else getattr(v, kind))
    return out
