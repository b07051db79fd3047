"""Spans as tracing backends read them, received over real OTLP/HTTP on loopback and decoded
with opentelemetry-proto: message content only on opt-in, the trial's input, output and outcome
on its root span, the run as the conversation, tool spans that never overlap the next model
call, one trace per trial across runs that reuse trials, and a refusal reported with its
reason."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from otlp_receiver import Collector, attrs

from gate.cli import main
from gate.engine.transcripts import read_transcripts
from gate.rundir.jsonl import read_jsonl


def _run(project_dir: Path, out: Path, model: str = "mock/expert@0.8") -> None:
    code = main(["run", "--config", str(project_dir / "gate.yaml"), "--model", model,
                 "--rounds", "1", "--out", str(out)])
    assert code == 0


def _export(run: Path, monkeypatch: pytest.MonkeyPatch, capture: str | None) -> list[Any]:
    if capture is None:
        monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    else:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", capture)
    with Collector() as c:
        assert main(["export-otel", "--run", str(run), "--endpoint", f"{c.url}/v1/traces"]) == 0
    return c.spans


def _op(span: Any) -> str:
    return str(attrs(span)["gen_ai.operation.name"])


@pytest.fixture
def run(project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "run"
    _run(project_dir, out)
    return out


def test_message_content_is_sent_only_when_capture_is_on(
    run: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    content_keys = {"gen_ai.input.messages", "gen_ai.output.messages", "output.value",
                    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result"}
    off = _export(run, monkeypatch, None)
    chats_off = [s for s in off if _op(s) == "chat"]
    assert chats_off
    assert not any(content_keys & set(attrs(s)) for s in off if _op(s) != "invoke_agent")
    assert not any({"output.value", "gen_ai.output.messages"} & set(attrs(s)) for s in off)

    on = _export(run, monkeypatch, "SPAN_ONLY")  # the official instrumentation's value
    chats = [s for s in on if _op(s) == "chat"]
    assert len(chats) == len(chats_off)
    transcripts = {t.trial_id: t for t in read_transcripts(run).values()}
    for span in chats:
        a = attrs(span)
        sent = json.loads(a["gen_ai.input.messages"])
        answer = json.loads(a["gen_ai.output.messages"])
        # the latest GenAI format: roles with typed parts, the answer with its finish reason
        assert sent[0]["role"] == "system"
        assert sent[1]["role"] == "user"
        assert sent[1]["parts"] == [{"type": "text", "content": transcripts[
            a["gate.trial.id"]].instruction}]
        assert all(p["type"] in ("text", "tool_call", "tool_call_response", "reasoning")
                   for m in sent + answer for p in m["parts"])
        assert [m["role"] for m in answer] == ["assistant"]
        assert answer[0]["finish_reason"] == a["gen_ai.response.finish_reasons"][0]
        step = a["gate.step"]
        assert len([m for m in sent if m["role"] == "assistant"]) == step - 1
    # a model's tool call and the tool's answer meet in the next step's input
    calls = [p for s in chats for m in json.loads(attrs(s)["gen_ai.output.messages"])
             for p in m["parts"] if p["type"] == "tool_call"]
    assert calls
    assert all(isinstance(p["arguments"], dict) for p in calls)
    tools = [s for s in on if _op(s) == "execute_tool"]
    assert all("gen_ai.tool.call.result" in attrs(s) for s in tools)


def test_root_span_carries_input_output_outcome_and_the_run_as_conversation(
    run: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    spans = _export(run, monkeypatch, "true")
    manifest = json.loads((run / "manifest.json").read_text())
    trials = {t["trace_id"]: t for t in read_jsonl(run / "trials.jsonl")}
    transcripts = {t.trial_id: t for t in read_transcripts(run).values()}
    roots = [s for s in spans if _op(s) == "invoke_agent"]
    assert len(roots) == len(trials)
    outcomes = set()
    answered = 0
    for root in roots:
        a = attrs(root)
        trial = trials[root.trace_id.hex()]
        transcript = transcripts[trial["trial_id"]]
        assert a["input.value"] == transcript.instruction
        assert json.loads(a["gen_ai.input.messages"])[0]["parts"][0]["content"] == (
            transcript.instruction)
        if trial["ended"] == "final_answer":
            assert transcript.final_answer
            assert a["output.value"] == transcript.final_answer
            answered += 1
        else:  # the step limit came first: no answer to show
            assert "output.value" not in a
        assert a["gate.trial.success"] is trial["success"]
        assert a["gate.trial.reward"] == trial["reward"]
        assert a["gate.trial.outcome"] == ("success" if trial["success"] else "failure")
        outcomes.add(a["gate.trial.outcome"])
    assert outcomes == {"success", "failure"}  # mock/expert@0.8 does both
    assert answered > 0
    assert {attrs(s)["gen_ai.conversation.id"] for s in spans} == {manifest["run_id"]}
    # the provider as backends know it, not gate's config key ("mock")
    assert {attrs(s)["gen_ai.provider.name"] for s in spans} == {"gate.mock"}
    assert {attrs(s)["gate.provider"] for s in spans} == {"mock"}

    # without capture: the instruction still names the trace, the answer is not sent
    for root in (s for s in _export(run, monkeypatch, None) if _op(s) == "invoke_agent"):
        assert attrs(root)["input.value"]
        assert "output.value" not in attrs(root)


def test_no_tool_span_overlaps_the_next_chat_span(
    run: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    spans = _export(run, monkeypatch, None)
    by_trace: dict[bytes, list[Any]] = defaultdict(list)
    for s in spans:
        by_trace[s.trace_id].append(s)
    checked = 0
    for group in by_trace.values():
        chats = [s for s in group if _op(s) == "chat"]
        for tool in (s for s in group if _op(s) == "execute_tool"):
            step = attrs(tool)["gate.step"]
            own = [c for c in chats if attrs(c)["gate.step"] == step]
            later = [c for c in chats if attrs(c)["gate.step"] > step]
            assert tool.start_time_unix_nano >= max(c.end_time_unix_nano for c in own)
            if later:
                assert tool.end_time_unix_nano <= min(c.start_time_unix_nano for c in later)
                checked += 1
    assert checked > 0


def test_reused_trials_get_the_new_runs_trace_ids_with_a_link_to_the_original(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ("--candidate", "mock/expert@0.99", "--baseline", "mock/expert", "--max-rounds", "1")
    first, second = tmp_path / "cache" / "s1", tmp_path / "s2"
    cfg = str(project_dir / "gate.yaml")
    main(["sweep", "--config", cfg, "--out", str(first), *args])
    main(["sweep", "--config", cfg, "--out", str(second), *args, "--reuse-from",
          str(tmp_path / "cache")])
    reused = [t for t in read_jsonl(second / "trials.jsonl") if t["reused_from"]]
    assert reused
    assert main(["verify", "--run", str(second)]) == 0  # the copied transcripts check out
    spans = _export(first, monkeypatch, None) + _export(second, monkeypatch, None)
    roots = [s for s in spans if _op(s) == "invoke_agent"]
    n_trials = sum(len(read_jsonl(r / "trials.jsonl")) for r in (first, second))
    assert len(roots) == n_trials
    assert len({s.trace_id for s in roots}) == n_trials  # nothing for a backend to drop
    originals = {(attrs(s)["gate.trial.id"]): s for s in roots
                 if attrs(s)["gate.run.id"] == json.loads(
                     (first / "manifest.json").read_text())["run_id"]}
    linked = [s for s in roots if s.links]
    assert len(linked) == len(reused)
    paid_as = {t["trial_id"]: t["reused_from"]["trial_id"] for t in reused}
    for s in linked:
        [link] = s.links
        original = originals[paid_as[attrs(s)["gate.trial.id"]]]
        assert (link.trace_id, link.span_id) == (original.trace_id, original.span_id)


def test_a_refusing_collector_is_reported_with_its_status_and_reason(
    run: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    body = b'{"detail": "Missing required header x-mlflow-experiment-id"}'
    with Collector(status=422, body=body, content_type="application/json") as c:
        code = main(["export-otel", "--run", str(run), "--endpoint", f"{c.url}/v1/traces"])
    assert code == 1
    out = capsys.readouterr().out
    assert "HTTP 422" in out
    assert "x-mlflow-experiment-id" in out
    # said once, by gate: the exporter's own line (no reason in it) is not logged as well
    assert [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")] == []


def test_provider_names_come_from_the_type_and_host() -> None:
    from gate.config.schema import ProviderConfig
    from gate.providers.names import genai_provider_name

    def name(url: str) -> str:
        return genai_provider_name(ProviderConfig(type="openai", base_url=url, api_key_env="K"))

    assert name("https://openrouter.ai/api/v1") == "openrouter"
    assert name("https://api.openai.com/v1") == "openai"
    assert name("https://my-res.openai.azure.com/openai/v1") == "azure.ai.openai"
    assert name("https://api.groq.com/openai/v1") == "groq"
    assert name("http://127.0.0.1:8000/v1") == "openai"  # any OpenAI-compatible server
    assert genai_provider_name(ProviderConfig(type="mock")) == "gate.mock"
