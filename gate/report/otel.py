"""A run directory as OpenTelemetry GenAI spans, sent over OTLP/HTTP.

One trace per trial: an ``invoke_agent`` span, under it a ``chat {model}`` span per provider
attempt (audit.jsonl) and an ``execute_tool {tool}`` span per tool call (the trial's ``calls``,
timed by its transcript), and a ``gen_ai.evaluation.result`` event with the trial's score; the
root span also carries the outcome as filterable attributes (``gate.trial.success``,
``gate.trial.reward``, ``gate.trial.outcome``), the instruction as its input and every span the
run id as ``gen_ai.conversation.id``. Everything comes from the files on disk, so exporting
during a run and exporting a finished run later with ``gate export-otel`` send the same spans;
the trace id of each trial is the ``trace_id`` the engine wrote into trials.jsonl (a reused
trial is traced under this run's id, with a link to the run that paid for it).

Export never changes a result and never fails a run: a missing extra or an unreachable
collector is a warning; a refusal is reported with the collector's status and body. The
OpenTelemetry packages are the optional extra ``gate[otel]``. Message contents (the chat
spans' input and output messages from the transcripts, tool arguments and results, the final
answer) are sent only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is ``true``
(or ``SPAN_ONLY`` / ``SPAN_AND_EVENT``, the official instrumentation's values).
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
from gate.engine.transcripts import read_transcripts, transcript_of
from gate.errors import ConfigError
from gate.records import Manifest, Transcript
from gate.report.genai_messages import input_messages, output_messages, text_message
from gate.report.neutralize import neutralize
from gate.rundir import RunDir

if TYPE_CHECKING:  # the extra is optional: imported where used
    from opentelemetry.sdk.trace import ReadableSpan

log = logging.getLogger(__name__)

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
CAPTURE_VAR = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
INSTALL_HINT = "pip install 'gate[otel]'"
CAPTURE_ON = ("true", "span_only", "span_and_event")
BATCH = 256
REFUSAL_CHARS = 300  # of the collector's answer, in the warning
_NS = 1_000_000_000
ROUNDING_NS = 1_000_000  # audit timestamps are to the millisecond


@dataclass(frozen=True)
class ExportSummary:
    """What was sent: counts by span kind, and whether the collector accepted it all."""

    traces: int
    chat_spans: int
    tool_spans: int
    evaluation_events: int
    ok: bool
    refusal: str | None = None  # the collector's status and body when it refused


def export_configured() -> bool:
    """True when the standard OTLP endpoint variables ask for an export."""
    return any(os.environ.get(v) for v in ENDPOINT_VARS)


def capture_content() -> bool:
    return os.environ.get(CAPTURE_VAR, "").strip().lower() in CAPTURE_ON


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
    answers = _Answers()
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=timeout_s, session=answers.session())
    ok = True
    try:
        for i in range(0, len(spans), BATCH):
            if exporter.export(spans[i:i + BATCH]) is not SpanExportResult.SUCCESS:
                ok = False
                break
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]  # untyped in the SDK
    return ExportSummary(summary.traces, summary.chat_spans, summary.tool_spans,
                         summary.evaluation_events, ok, None if ok else answers.refusal)


class _Answers:
    """Keeps the collector's last refusal (status and body) from the exporter's session."""

    def __init__(self) -> None:
        self.refusal: str | None = None

    def session(self) -> Any:
        import requests  # the OTLP/HTTP exporter's own dependency

        session = requests.Session()
        session.hooks["response"].append(self._on_response)
        return session

    def _on_response(self, response: Any, *args: Any, **kwargs: Any) -> None:
        if response.status_code >= 400:
            body = neutralize(response.text, context="plain", limit=REFUSAL_CHARS)
            self.refusal = f"HTTP {response.status_code} {response.reason}: {body or '(empty)'}"


def refusal_text(summary: ExportSummary) -> str:
    """What to say when the collector did not accept every span."""
    why = summary.refusal or "unreachable, or no answer in time"
    return f"the collector did not accept every span ({why})"


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
        warn(f"OpenTelemetry export: {refusal_text(summary)}; the run's results are unaffected")
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
    manifest = run.manifest()
    trials = run.trials()
    transcripts = read_transcripts(run_dir)
    attempts: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for line in (a.to_json() for a in run.audit()):
        attempts[(str(line["arm"]), str(line["task"]), int(line["round"]))].append(line)
    attrs = {"service.version": manifest.gate_version}
    if not os.environ.get("OTEL_SERVICE_NAME"):  # the standard variable wins when set
        attrs["service.name"] = "gate"
    resource = Resource.create(attrs)
    builder = _Builder(manifest, resource, capture)
    for trial in trials:
        key = (trial.arm, trial.task, trial.round)
        builder.trial(trial.to_json(), sorted(
            attempts.get(key, []), key=lambda a: (a.get("step", 0), a.get("attempt", 0))),
            transcript_of(trial, transcripts))
    return builder.spans, builder.summary()


def _ns(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * _NS)


def _span_id(trace_id: str, key: str) -> int:
    value = int(hashlib.sha256(f"{trace_id}|{key}".encode()).hexdigest()[:16], 16)
    return value or 1  # zero is the invalid span id


def _context(trace_hex: str, key: str, *, remote: bool = False) -> Any:
    from opentelemetry.trace import SpanContext, TraceFlags

    return SpanContext(int(trace_hex, 16), _span_id(trace_hex, key), is_remote=remote,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED))


@dataclass
class _Chat:
    """A trial's chat spans as the tool spans need them: when each step's calls began/ended."""

    starts: dict[int, int]
    ends: dict[int, int]

    def next_start(self, step: int, default: int) -> int:
        later = [t for s, t in self.starts.items() if s > step]
        return min(later, default=default)


class _Builder:
    def __init__(self, manifest: Manifest, resource: Any, capture: bool) -> None:
        self.manifest = manifest
        self.providers = {a.name: a.provider for a in manifest.arms}
        self.resource = resource
        self.capture = capture
        self.spans: list[ReadableSpan] = []
        self.counts = {"traces": 0, "chat": 0, "tool": 0, "evaluation": 0}

    def summary(self) -> ExportSummary:
        c = self.counts
        return ExportSummary(c["traces"], c["chat"], c["tool"], c["evaluation"], True)

    def _run_attrs(self, trial: Mapping[str, Any]) -> dict[str, Any]:
        m = self.manifest
        key = self.providers.get(str(trial["arm"]), "")
        return {
            "gen_ai.conversation.id": m.run_id,
            "gen_ai.provider.name": m.provider_names.get(key, key),
            "gen_ai.request.model": str(trial["model"]),
            "gate.provider": key, "gate.run.id": m.run_id, "gate.arm": str(trial["arm"]),
            "gate.task": str(trial["task"]), "gate.round": int(trial["round"]),
            "gate.trial.id": str(trial["trial_id"]), "gate.trial.seed": int(trial["seed"]),
            "gate.run.seed": m.seed, "gate.git.sha": m.git_sha or "unknown",
            "gate.config.sha256": m.config_sha256,
        }

    def _trace_hex(self, trial: Mapping[str, Any]) -> str:
        """The trial's trace id; a reused trial's is this run's (its record may hold the
        paying run's, from before gate re-traced reused trials)."""
        if trial.get("reused_from") or not trial.get("trace_id"):
            return trial_trace_id(self.manifest.run_id, str(trial["trial_id"]))
        return str(trial["trace_id"])

    def trial(self, trial: Mapping[str, Any], attempts: Sequence[Mapping[str, Any]],
              transcript: Transcript | None) -> None:
        from opentelemetry.trace import SpanKind

        trace_hex = self._trace_hex(trial)
        end = _ns(str(trial["ts"]))
        start = end - int(float(trial.get("wall_s", 0.0)) * _NS)
        root = _context(trace_hex, "agent")
        base = self._run_attrs(trial)
        chat = _Chat({}, {})
        floor = start
        for a in attempts:
            t0, t1 = self._chat(a, trace_hex, root, base, transcript, floor)
            floor = max(floor, t1)
            step = int(a.get("step", 0))
            chat.starts[step] = min(chat.starts.get(step, t0), t0)
            chat.ends[step] = max(chat.ends.get(step, t1), t1)
        self._tools(trial, trace_hex, root, base, chat, start, end, transcript)
        self.spans.append(self._span(
            "invoke_agent gate", root, None, SpanKind.INTERNAL, start, end,
            {**base, "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "gate",
             "session.id": self.manifest.run_id,
             **_trial_attrs(trial, transcript, self.capture)},
            _evaluation(trial, end), error=_trial_error(trial), links=_links(trial)))
        self.counts["traces"] += 1
        if trial.get("status") == "scored":
            self.counts["evaluation"] += 1

    def _chat(self, a: Mapping[str, Any], trace_hex: str, root: Any,
              base: Mapping[str, Any], transcript: Transcript | None,
              floor: int) -> tuple[int, int]:
        """One attempt's span; it starts no earlier than the previous one ended when they
        seem to overlap only by the audit timestamps' millisecond rounding."""
        from opentelemetry.trace import SpanKind

        end = _ns(str(a["ts"]))
        start = end - int(float(a.get("latency_s", 0.0)) * _NS)
        if 0 < floor - start <= ROUNDING_NS:
            start = floor
        end = max(start, end)
        key = f"chat|{a.get('step')}|{a.get('attempt')}|{a.get('request_sha256')}"
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
        if self.capture and transcript is not None:
            attrs.update(_chat_content(transcript, int(a.get("step", 0)), error is None))
        self.spans.append(self._span(f"chat {a.get('model')}", _context(trace_hex, key), root,
                                     SpanKind.CLIENT, start, end, attrs, (), error=error))
        self.counts["chat"] += 1
        return start, end

    def _tools(self, trial: Mapping[str, Any], trace_hex: str, root: Any,
               base: Mapping[str, Any], chat: _Chat, start: int, end: int,
               transcript: Transcript | None) -> None:
        from opentelemetry.trace import SpanKind

        timed = _tool_timings(transcript)
        results = _tool_results(transcript) if self.capture else {}
        for i, call in enumerate(list(trial.get("calls") or [])):
            step = int(call.get("step", 0))
            call_id = str(call.get("call_id", ""))
            t0, t1 = _tool_window(timed.get((step, call_id), []), chat, step, start, end)
            attrs: dict[str, Any] = {
                **base, "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": str(call.get("tool", "")), "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": call_id, "gate.step": step,
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
            if call_id in results:
                attrs["gen_ai.tool.call.result"] = results[call_id]
            self.spans.append(self._span(f"execute_tool {call.get('tool', '')}",
                                         _context(trace_hex, f"tool|{i}"), root,
                                         SpanKind.INTERNAL, t0, t1, attrs, (),
                                         error=f"invalid_{error}" if error else None))
            self.counts["tool"] += 1

    def _span(self, name: str, ctx: Any, parent: Any, kind: Any, start: int, end: int,
              attrs: Mapping[str, Any], events: Sequence[Any], *,
              error: str | None, links: Sequence[Any] = ()) -> ReadableSpan:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import Status, StatusCode

        status = Status(StatusCode.ERROR, error) if error else Status(StatusCode.UNSET)
        return ReadableSpan(
            name=name, context=ctx, parent=parent, resource=self.resource,
            attributes=dict(attrs), events=tuple(events), links=tuple(links), kind=kind,
            status=status, start_time=start, end_time=max(start, end),
            instrumentation_scope=InstrumentationScope("gate", None),
        )


def _tool_timings(transcript: Transcript | None) -> dict[tuple[int, str], list[tuple[int, int]]]:
    """(step, call id) -> when each such call ran, from the transcript, in order."""
    out: dict[tuple[int, str], list[tuple[int, int]]] = defaultdict(list)
    for t in transcript.tool_calls if transcript is not None else []:
        t0 = _ns(t.started)
        out[(t.step, t.call_id)].append((t0, t0 + int(t.duration_s * _NS)))
    return out


def _tool_window(timed: list[tuple[int, int]], chat: _Chat, step: int, start: int,
                 end: int) -> tuple[int, int]:
    """A tool span's start and end: the call's own timing when recorded, else the gap
    between its step's answer and the next model call. Either way it lies after its step's
    chat span and ends before the next one starts (clock rounding never makes them overlap)."""
    after = chat.ends.get(step, start)
    before = min(chat.next_start(step, end), end)
    t0, t1 = timed.pop(0) if timed else (after, before)
    t0 = min(max(t0, after), before)
    return t0, max(t0, min(t1, before))


def _tool_results(transcript: Transcript | None) -> dict[str, str]:
    """call id -> the tool's answer as the model got it."""
    out: dict[str, str] = {}
    for m in transcript.messages if transcript is not None else []:
        if m.get("role") == "tool" and m.get("tool_call_id") is not None:
            content = m.get("content")
            out[str(m["tool_call_id"])] = content if isinstance(content, str) else json.dumps(
                content, default=str)
    return out


def _chat_content(transcript: Transcript, step: int, answered: bool) -> dict[str, str]:
    """The chat span's ``gen_ai.input.messages`` (and ``output.messages`` for the attempt
    that was answered), from the transcript's record of the step."""
    rec = next((s for s in transcript.steps if s.step == step), None)
    if rec is None:
        return {}
    attrs = {"gen_ai.input.messages": input_messages(
        transcript.messages[rec.seen_from:rec.seen_to])}
    if answered and rec.answer is not None and rec.answer < len(transcript.messages):
        attrs["gen_ai.output.messages"] = output_messages(transcript.messages[rec.answer],
                                                          rec.finish_reason)
    return attrs


def _links(trial: Mapping[str, Any]) -> tuple[Any, ...]:
    """A reused trial's link to its trace in the run that paid for it."""
    from opentelemetry.trace import Link

    origin = trial.get("reused_from")
    if not isinstance(origin, Mapping):
        return ()
    paid_as = origin.get("trial_id") or trial["trial_id"]  # its id in the run that paid
    original = trial_trace_id(str(origin["run_id"]), str(paid_as))
    return (Link(_context(original, "agent", remote=True),
                 {"gate.link": "reused_from", "gate.run.id": str(origin["run_id"])}),)


def outcome(trial: Mapping[str, Any]) -> str:
    """``success`` or ``failure`` for a scored trial, else its status (lost, not scored)."""
    if trial.get("status") == "scored":
        return "success" if trial.get("success") else "failure"
    return str(trial.get("status", ""))


def _trial_attrs(trial: Mapping[str, Any], transcript: Transcript | None,
                 capture: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {"gate.trial.status": str(trial.get("status", "")),
                             "gate.trial.outcome": outcome(trial)}
    if trial.get("success") is not None:
        attrs["gate.trial.success"] = bool(trial["success"])
    if trial.get("reward") is not None:
        attrs["gate.trial.reward"] = float(trial["reward"])
    for field in ("tokens_in", "tokens_out"):
        if trial.get(field) is not None:
            name = "input_tokens" if field == "tokens_in" else "output_tokens"
            attrs[f"gen_ai.usage.{name}"] = int(trial[field])
    if trial.get("cost_usd") is not None:
        attrs["gen_ai.usage.cost"] = float(trial["cost_usd"])
    if transcript is None:
        return attrs
    attrs.update({"gen_ai.input.messages": text_message("user", transcript.instruction),
                  "input.value": transcript.instruction, "input.mime_type": "text/plain"})
    if capture and transcript.final_answer is not None:
        attrs.update({
            "gen_ai.output.messages": text_message("assistant", transcript.final_answer,
                                                   "stop"),
            "output.value": transcript.final_answer, "output.mime_type": "text/plain"})
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
