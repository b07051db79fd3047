"""A run directory as OpenTelemetry GenAI spans, sent over OTLP/HTTP.

One trace per trial: an ``invoke_agent`` span, under it a ``chat {model}`` span per provider
attempt (audit.jsonl) and an ``execute_tool {tool}`` span per tool call (the trial's ``calls``),
and a ``gen_ai.evaluation.result`` event with the trial's score. Everything comes from the
files on disk, so exporting during a run and exporting a finished run later with
``gate export-otel`` send the same spans; the trace id of each trial is the ``trace_id`` the
engine wrote into trials.jsonl.

Export never changes a result and never fails a run: a missing extra or an unreachable
collector is a warning. The OpenTelemetry packages are the optional extra ``gate[otel]``.
Message contents (tool arguments, final answers) are sent only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate.engine.runner import trial_trace_id
from gate.errors import ConfigError
from gate.rundir import RunDir

if TYPE_CHECKING:  # the extra is optional: imported where used
    from opentelemetry.sdk.trace import ReadableSpan

log = logging.getLogger(__name__)

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
CAPTURE_VAR = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
INSTALL_HINT = "pip install 'gate[otel]'"
BATCH = 256
_NS = 1_000_000_000


@dataclass(frozen=True)
class ExportSummary:
    """What was sent: counts by span kind, and whether the collector accepted it all."""

    traces: int
    chat_spans: int
    tool_spans: int
    evaluation_events: int
    ok: bool


def export_configured() -> bool:
    """True when the standard OTLP endpoint variables ask for an export."""
    return any(os.environ.get(v) for v in ENDPOINT_VARS)


def capture_content() -> bool:
    return os.environ.get(CAPTURE_VAR, "").strip().lower() == "true"


def export_run(
    run_dir: Path, *, endpoint: str | None = None, timeout_s: float | None = None,
) -> ExportSummary:
    """Send every trial of ``run_dir``. Raises ``ConfigError`` when the extra is missing or
    the directory holds no run; reports a refused export in ``ExportSummary.ok``."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult
    except ImportError:
        raise ConfigError.one(str(run_dir), None, "OpenTelemetry export needs the optional "
                              f"extra: {INSTALL_HINT}") from None
    spans, summary = build_spans(run_dir, capture=capture_content())
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=timeout_s)
    ok = True
    try:
        for i in range(0, len(spans), BATCH):
            if exporter.export(spans[i:i + BATCH]) is not SpanExportResult.SUCCESS:
                ok = False
                break
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]  # untyped in the SDK
    return ExportSummary(summary.traces, summary.chat_spans, summary.tool_spans,
                         summary.evaluation_events, ok)


def export_if_configured(run_dir: Path, warn: Any) -> ExportSummary | None:
    """The end-of-run hook: export when the OTLP variables are set; never raises."""
    if not export_configured():
        return None
    try:
        summary = export_run(run_dir, timeout_s=_env_timeout())
    except Exception as exc:  # export must never fail a run
        warn(f"OpenTelemetry export skipped: {exc}")
        return None
    if not summary.ok:
        warn("OpenTelemetry export: the collector did not accept every span "
             "(unreachable or refused); the run's results are unaffected")
    return summary


def _env_timeout() -> float:
    raw = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        return float(raw) / 1000.0 if raw else 10.0  # the variables are in milliseconds
    except ValueError:
        return 10.0


# --- building spans ----------------------------------------------------------------------

def build_spans(run_dir: Path, *, capture: bool) -> tuple[list[ReadableSpan], ExportSummary]:
    """Every span of the run, children before their parent (the order exporters expect)."""
    from opentelemetry.sdk.resources import Resource

    run = RunDir(run_dir)
    if not run.has_manifest():
        raise ConfigError.one(str(run.manifest_path), None,
                              f"no run here (no {run.manifest_path.name})")
    manifest = run.manifest().to_json()
    trials = [t.to_json() for t in run.trials()]
    attempts: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for line in (a.to_json() for a in run.audit()):
        attempts[(str(line["arm"]), str(line["task"]), int(line["round"]))].append(line)
    attrs = {"service.version": str(manifest.get("gate_version", ""))}
    if not os.environ.get("OTEL_SERVICE_NAME"):  # the standard variable wins when set
        attrs["service.name"] = "gate"
    resource = Resource.create(attrs)
    providers = {str(a["name"]): str(a.get("provider", "")) for a in manifest.get("arms", [])}
    builder = _Builder(manifest, providers, resource, capture)
    for trial in trials:
        key = (str(trial["arm"]), str(trial["task"]), int(trial["round"]))
        builder.trial(trial, sorted(attempts.get(key, []),
                                    key=lambda a: (a.get("step", 0), a.get("attempt", 0))))
    return builder.spans, builder.summary()


def _ns(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * _NS)


def _span_id(trace_id: str, key: str) -> int:
    value = int(hashlib.sha256(f"{trace_id}|{key}".encode()).hexdigest()[:16], 16)
    return value or 1  # zero is the invalid span id


class _Builder:
    def __init__(self, manifest: Mapping[str, Any], providers: Mapping[str, str],
                 resource: Any, capture: bool) -> None:
        self.manifest = manifest
        self.providers = providers
        self.resource = resource
        self.capture = capture
        self.spans: list[ReadableSpan] = []
        self.counts = {"traces": 0, "chat": 0, "tool": 0, "evaluation": 0}

    def summary(self) -> ExportSummary:
        c = self.counts
        return ExportSummary(c["traces"], c["chat"], c["tool"], c["evaluation"], True)

    def _run_attrs(self, trial: Mapping[str, Any]) -> dict[str, Any]:
        m = self.manifest
        attrs = {
            "gate.run.id": str(m.get("run_id", "")), "gate.arm": str(trial["arm"]),
            "gate.task": str(trial["task"]), "gate.round": int(trial["round"]),
            "gate.trial.id": str(trial["trial_id"]), "gate.trial.seed": int(trial["seed"]),
            "gate.run.seed": int(m.get("seed", 0) or 0),
            "gate.git.sha": str(m.get("git_sha") or "unknown"),
            "gate.config.sha256": str(m.get("config_sha256", "")),
        }
        return attrs

    def trial(self, trial: Mapping[str, Any], attempts: Sequence[Mapping[str, Any]]) -> None:
        from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

        trace_hex = str(trial.get("trace_id") or trial_trace_id(
            str(self.manifest.get("run_id", "")), str(trial["trial_id"])))
        trace_id = int(trace_hex, 16)
        end = _ns(str(trial["ts"]))
        start = end - int(float(trial.get("wall_s", 0.0)) * _NS)
        root = SpanContext(trace_id, _span_id(trace_hex, "agent"), is_remote=False,
                           trace_flags=TraceFlags(TraceFlags.SAMPLED))
        provider = self.providers.get(str(trial["arm"]), "")
        base = {**self._run_attrs(trial), "gen_ai.provider.name": provider,
                "gen_ai.request.model": str(trial["model"])}
        chat_ends: dict[int, int] = {}
        for a in attempts:
            chat_ends[int(a.get("step", 0))] = self._chat(a, trace_hex, root, base)
        self._tools(trial, trace_hex, root, base, chat_ends, start, end)
        self.spans.append(self._span(
            "invoke_agent gate", root, None, SpanKind.INTERNAL, start, end,
            {**base, "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "gate",
             **_trial_attrs(trial, self.capture)},
            _evaluation(trial, end), error=_trial_error(trial)))
        self.counts["traces"] += 1
        if trial.get("status") == "scored":
            self.counts["evaluation"] += 1

    def _chat(self, a: Mapping[str, Any], trace_hex: str, root: Any,
              base: Mapping[str, Any]) -> int:
        from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

        end = _ns(str(a["ts"]))
        start = end - int(float(a.get("latency_s", 0.0)) * _NS)
        key = f"chat|{a.get('step')}|{a.get('attempt')}|{a.get('request_sha256')}"
        ctx = SpanContext(root.trace_id, _span_id(trace_hex, key), is_remote=False,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED))
        attrs: dict[str, Any] = {
            **base, "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": int(a.get("tokens_in") or 0),
            "gen_ai.usage.output_tokens": int(a.get("tokens_out") or 0),
            "gen_ai.usage.cost": float(a.get("cost_computed_usd") or 0.0),
            "gate.step": int(a.get("step", 0)), "gate.attempt": int(a.get("attempt", 0)),
        }
        if a.get("response_id"):
            attrs["gen_ai.response.id"] = str(a["response_id"])
        if a.get("finish_reason"):
            attrs["gen_ai.response.finish_reasons"] = [str(a["finish_reason"])]
        if a.get("http_status") is not None:
            attrs["http.response.status_code"] = int(a["http_status"])
        error = None if a.get("outcome") == "ok" else str(a.get("outcome"))
        if error:
            attrs["error.type"] = error
        self.spans.append(self._span(f"chat {a.get('model')}", ctx, root, SpanKind.CLIENT,
                                     start, end, attrs, (), error=error))
        self.counts["chat"] += 1
        return end

    def _tools(self, trial: Mapping[str, Any], trace_hex: str, root: Any,
               base: Mapping[str, Any], chat_ends: Mapping[int, int], start: int,
               end: int) -> None:
        from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

        calls = list(trial.get("calls") or [])
        for i, call in enumerate(calls):
            step = int(call.get("step", 0))
            t0 = chat_ends.get(step, start)
            t1 = max(t0, min(chat_ends.get(step + 1, end), end))
            ctx = SpanContext(root.trace_id, _span_id(trace_hex, f"tool|{i}"), is_remote=False,
                              trace_flags=TraceFlags(TraceFlags.SAMPLED))
            attrs: dict[str, Any] = {
                **base, "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": str(call.get("tool", "")), "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": str(call.get("call_id", "")), "gate.step": step,
            }
            error = call.get("invalid")
            if error:
                attrs["error.type"] = f"invalid_{error}"
            for flag in ("wrong_fix", "distractor"):
                if call.get(flag):
                    attrs[f"gate.{flag}"] = True
            if call.get("policy_violation"):
                attrs["gate.policy_violation"] = str(call["policy_violation"])
            if self.capture and "args" in call:
                attrs["gen_ai.tool.call.arguments"] = json.dumps(call["args"], sort_keys=True)
            self.spans.append(self._span(f"execute_tool {call.get('tool', '')}", ctx, root,
                                         SpanKind.INTERNAL, t0, t1, attrs, (),
                                         error=f"invalid_{error}" if error else None))
            self.counts["tool"] += 1

    def _span(self, name: str, ctx: Any, parent: Any, kind: Any, start: int, end: int,
              attrs: Mapping[str, Any], events: Sequence[Any], *,
              error: str | None) -> ReadableSpan:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import Status, StatusCode

        status = Status(StatusCode.ERROR, error) if error else Status(StatusCode.UNSET)
        return ReadableSpan(
            name=name, context=ctx, parent=parent, resource=self.resource,
            attributes=dict(attrs), events=tuple(events), kind=kind, status=status,
            start_time=start, end_time=max(start, end),
            instrumentation_scope=InstrumentationScope("gate", None),
        )


def _trial_attrs(trial: Mapping[str, Any], capture: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {"gate.trial.status": str(trial.get("status", ""))}
    for field in ("tokens_in", "tokens_out"):
        if trial.get(field) is not None:
            name = "input_tokens" if field == "tokens_in" else "output_tokens"
            attrs[f"gen_ai.usage.{name}"] = int(trial[field])
    if trial.get("cost_usd") is not None:
        attrs["gen_ai.usage.cost"] = float(trial["cost_usd"])
    if capture and trial.get("final_answer"):
        attrs["gate.final_answer"] = str(trial["final_answer"])
    return attrs


def _trial_error(trial: Mapping[str, Any]) -> str | None:
    status = str(trial.get("status", ""))
    if status == "scored":
        return None
    pe = trial.get("provider_error")
    if isinstance(pe, Mapping) and pe.get("kind"):
        return str(pe["kind"])
    return status or "unknown"


def _evaluation(trial: Mapping[str, Any], at: int) -> tuple[Any, ...]:
    from opentelemetry.sdk.trace import Event

    if trial.get("status") != "scored":
        return ()
    reasons = failure_reasons(trial)
    attrs: dict[str, Any] = {
        "gen_ai.evaluation.name": "gate.end_state",
        "gen_ai.evaluation.score.value": float(trial.get("reward", 0.0)),
        "gen_ai.evaluation.score.label": "success" if trial.get("success") else "failure",
        "gen_ai.evaluation.explanation": "; ".join(reasons) or "end state as expected",
    }
    return (Event("gen_ai.evaluation.result", attrs, timestamp=at),)


def failure_reasons(trial: Mapping[str, Any]) -> list[str]:
    """Why a scored trial fell short, from its recorded counts (no free text)."""
    reasons: list[str] = []
    if trial.get("wrong_fixes"):
        reasons.append(f"{trial['wrong_fixes']} wrong fix(es)")
    if trial.get("policy_violations"):
        reasons.append(f"{len(trial['policy_violations'])} policy violation(s)")
    for kind, n in sorted((trial.get("invalid_by_kind") or {}).items()):
        reasons.append(f"{n} invalid action(s): {kind}")
    if trial.get("ended") == "step_limit":
        reasons.append("step limit reached")
    elif trial.get("ended") not in (None, "final_answer"):
        reasons.append(f"ended: {trial['ended']}")
    if not trial.get("success") and not reasons:
        reasons.append("end state differs from the expected one")
    return reasons
