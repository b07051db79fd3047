"""What the OpenTelemetry Collector's ``file`` exporter writes, from SDK spans: one
ExportTraceServiceRequest per line as OTLP/JSON (encoded by the official
``opentelemetry-exporter-otlp-proto-common``; ids in hex, as OTLP/JSON wants)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


def otlp_json_line(spans: Sequence[ReadableSpan]) -> str:
    record: dict[str, Any] = MessageToDict(encode_spans(spans))
    for rs in record.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):  # protobuf JSON gives base64; OTLP/JSON wants hex
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(record)


class OtlpJsonFileExporter(SpanExporter):
    """A span exporter writing the Collector file exporter's lines."""

    def __init__(self, path: Path) -> None:
        self.fh = path.open("a", encoding="utf-8")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.fh.write(otlp_json_line(spans) + "\n")
        self.fh.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.fh.close()
