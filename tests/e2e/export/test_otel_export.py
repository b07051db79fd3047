"""A run as OpenTelemetry GenAI spans, received over real OTLP/HTTP on loopback and decoded
with opentelemetry-proto, checked against the run's own audit.jsonl and trials.jsonl."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from otlp_receiver import Collector, attrs

from gate.cli import main
from gate.rundir.audit import attempts

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


_attrs = attrs


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _run_with_faults(project_dir: Path, out: Path, rate: float = 0.15) -> int:
    cfg = project_dir / "gate.yaml"
    cfg.write_text(cfg.read_text().replace(
        "    type: mock\n", f"    type: mock\n    faults: {{rate: {rate}}}\n", 1))
    return main(["run", "--config", str(cfg), "--model", "mock/expert@0.8", "--rounds", "1",
                 "--out", str(out)])


def test_spans_match_the_audit_and_trials_of_the_run(
    project_dir: Path, tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Basic%20dGVzdA==")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    out = tmp_path / "run"
    assert _run_with_faults(project_dir, out) in (0, 3)
    audit = attempts(_lines(out / "audit.jsonl"))  # one per attempt (started + outcome lines)
    trials = _lines(out / "trials.jsonl")
    spans = collector.spans
    by_op = Counter(_attrs(s)["gen_ai.operation.name"] for s in spans)

    # one chat span per audit attempt, with the same response ids, tokens and error kinds
    chats = [s for s in spans if _attrs(s)["gen_ai.operation.name"] == "chat"]
    assert by_op["chat"] == len(audit) > 0
    assert sorted(_attrs(s).get("gen_ai.response.id", "") for s in chats) == sorted(
        a["response_id"] or "" for a in audit)
    assert sum(_attrs(s)["gen_ai.usage.input_tokens"] for s in chats) == sum(
        a["tokens_in"] for a in audit)
    assert sum(_attrs(s)["gen_ai.usage.output_tokens"] for s in chats) == sum(
        a["tokens_out"] for a in audit)
    errors = Counter(_attrs(s)["error.type"] for s in chats if "error.type" in _attrs(s))
    assert errors == Counter(a["outcome"] for a in audit if a["outcome"] != "ok")
    assert sum(errors.values()) > 0  # the injected faults are there to be checked
    assert all(s.name.startswith("chat mock/expert@0.8") for s in chats)

    # one tool span per tool call, with its call id; one agent span per trial
    calls = [(t["trace_id"], c["call_id"], c["tool"]) for t in trials for c in t.get("calls", [])]
    tools = [s for s in spans if _attrs(s)["gen_ai.operation.name"] == "execute_tool"]
    assert sorted((s.trace_id.hex(), _attrs(s)["gen_ai.tool.call.id"],
                   _attrs(s)["gen_ai.tool.name"]) for s in tools) == sorted(calls)
    assert len(calls) > len(trials)
    agents = {s.trace_id.hex(): s for s in spans
              if _attrs(s)["gen_ai.operation.name"] == "invoke_agent"}
    assert sorted(agents) == sorted(t["trace_id"] for t in trials)

    # every child hangs under its trial's agent span
    for s in chats + tools:
        assert s.parent_span_id == agents[s.trace_id.hex()].span_id

    # one evaluation event per scored trial, with its score
    scored = {t["trace_id"]: t for t in trials if t["status"] == "scored"}
    events = [(s.trace_id.hex(), e) for s in agents.values() for e in s.events
              if e.name == "gen_ai.evaluation.result"]
    assert len(events) == len(scored) > 0
    for trace_id, e in events:
        ev = {kv.key: kv.value for kv in e.attributes}
        assert ev["gen_ai.evaluation.score.value"].double_value == scored[trace_id]["reward"]
        label = "success" if scored[trace_id]["success"] else "failure"
        assert ev["gen_ai.evaluation.score.label"].string_value == label

    # run-level attributes for grouping; auth header passed through; no content by default
    manifest = json.loads((out / "manifest.json").read_text())
    a0 = _attrs(next(iter(agents.values())))
    assert a0["gate.run.id"] == manifest["run_id"]
    assert a0["gate.config.sha256"] == manifest["config_sha256"]
    assert {"gate.arm", "gate.task", "gate.round", "gate.run.seed", "gate.git.sha"} <= set(a0)
    assert all(h.get("authorization") == "Basic dGVzdA==" for h in collector.headers)
    assert not any("gen_ai.tool.call.arguments" in _attrs(s) for s in tools)


def test_export_otel_command_on_a_finished_run_sends_the_same_traces(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "run"
    assert _run_with_faults(project_dir, out, rate=0.0) == 0
    results_before = (out / "results.json").read_bytes()
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    with Collector() as c:
        code = main(["export-otel", "--run", str(out), "--endpoint", f"{c.url}/v1/traces"])
    assert code == 0
    trials = _lines(out / "trials.jsonl")
    assert {s.trace_id.hex() for s in c.spans} == {t["trace_id"] for t in trials}
    args = [_attrs(s)["gen_ai.tool.call.arguments"] for s in c.spans
            if _attrs(s)["gen_ai.operation.name"] == "execute_tool"
            and "gen_ai.tool.call.arguments" in _attrs(s)]
    assert args
    assert all(isinstance(json.loads(a), dict) for a in args)
    assert (out / "results.json").read_bytes() == results_before
    assert f"{len(trials)} trial traces" in capsys.readouterr().out


def test_unreachable_collector_is_a_warning_and_the_run_still_passes(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Collector(status=503) as c:  # a collector that refuses everything
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")
        out = tmp_path / "run"
        code = _run_with_faults(project_dir, out, rate=0.0)
    assert code == 0
    assert json.loads((out / "results.json").read_text())["status"] == "complete"
    assert "OpenTelemetry export" in capsys.readouterr().err


def test_trace_ids_are_stable_across_resume_and_distinct_per_trial(
    project_dir: Path, tmp_path: Path,
) -> None:
    from gate.engine.runner import trial_trace_id

    out = tmp_path / "run"
    assert _run_with_faults(project_dir, out, rate=0.0) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    trials = _lines(out / "trials.jsonl")
    assert len({t["trace_id"] for t in trials}) == len(trials)
    for t in trials:
        assert t["trace_id"] == trial_trace_id(manifest["run_id"], t["trial_id"])


def test_report_names_the_traces_of_failed_trials_and_links_them(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gate.report.render import render_markdown

    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "run"
    assert _run_with_faults(project_dir, out, rate=0.0) == 0
    failed = [t for t in _lines(out / "trials.jsonl") if not t["success"]]
    assert failed  # mock/expert@0.8 fails some tasks
    monkeypatch.setenv("GATE_TRACE_URL", "https://traces.example/t/{trace_id}")
    text = render_markdown(out)
    assert f"(https://traces.example/t/{failed[0]['trace_id']})" in text
    passed = next(t for t in _lines(out / "trials.jsonl") if t["success"])
    assert passed["trace_id"] not in text
