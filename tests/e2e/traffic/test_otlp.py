"""OTLP/JSON input: a real agent instrumented by ``opentelemetry-instrumentation-openai-v2``
end to end, and hand-made Collector file-exporter lines for labels, tool definitions,
``execute_tool`` spans and malformed input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from paths import SUPPORT

from gate.cli import main
from gate.project.load import load_project
from gate.simulate.models import MOCK_PRICES, MockProvider
from gate.simulate.server import MockServer

WRITES = ["--writes", "cancel_*", "--writes", "refund_*", "--writes", "exchange_*",
          "--writes", "update_*"]


@pytest.fixture
def server(project_dir: Path) -> Iterator[MockServer]:
    with MockServer(MockProvider(load_project(project_dir / "gate.yaml")), MOCK_PRICES,
                    seed=5) as srv:
        yield srv


@pytest.mark.slow
def test_an_instrumented_openai_agent_becomes_a_suite_that_finds_the_regression(
    tmp_path: Path, project_dir: Path, server: MockServer, capsys: pytest.CaptureFixture[str]
) -> None:
    traces = tmp_path / "traces.jsonl"
    subprocess.run([sys.executable, str(SUPPORT / "instrumented_agent.py"), "--base-url",
                    server.base_url, "--project", str(project_dir), "--out", str(traces)],
                   check=True, cwd=project_dir, timeout=240)
    first = json.loads(traces.read_text().splitlines()[0])
    assert "resourceSpans" in first
    suite = tmp_path / "suite"
    assert main(["import-traces", "--from", str(traces), "--env", "shop", "--out", str(suite),
                 "--assume-good", *WRITES]) == 0
    out = capsys.readouterr().out
    n_orders = len(list((project_dir / "tasks" / "orders").glob("*.yaml")))
    assert f"sessions: {n_orders} read" in out
    config = str(suite / "gate.yaml")
    assert main(["validate", "--config", config]) == 0
    assert f"ok: {n_orders} tasks" in capsys.readouterr().out
    assert main(["smoke", "--config", config, "--out", str(tmp_path / "smoke")]) == 0
    code = main(["sweep", "--config", config, "--candidate", "mock/expert@0.8",
                 "--baseline", "mock/expert", "--out", str(tmp_path / "run")])
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (code, results["verdict"]) == (1, "regression")
    summary = json.loads((suite / "traffic-summary.json").read_text())
    assert summary["redactions"].get("EMAIL", 0) > 0  # the customers' addresses


# --- hand-made Collector file-exporter lines ----------------------------------------------

def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    return {"stringValue": v}


def span(trace: str, n: int, name: str, attrs: dict[str, Any],
         events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"traceId": trace, "spanId": f"{n:016x}", "name": name,
            "startTimeUnixNano": str(1_790_000_000_000_000_000 + n * 1_000_000_000),
            "endTimeUnixNano": str(1_790_000_000_500_000_000 + n * 1_000_000_000),
            "attributes": [{"key": k, "value": _value(v)} for k, v in attrs.items()],
            "events": events or []}


def line(*spans: dict[str, Any]) -> str:
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [
        {"scope": {"name": "test"}, "spans": list(spans)}]}]})


def chat(trace: str, n: int, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
         **extra: Any) -> dict[str, Any]:
    return span(trace, n, "chat m", {"gen_ai.operation.name": "chat",
                                     "gen_ai.input.messages": json.dumps(inputs),
                                     "gen_ai.output.messages": json.dumps(outputs), **extra})


def conversation(order: str, *, with_result: bool = True) -> tuple[list[Any], list[Any]]:
    user = {"role": "user", "parts": [{"type": "text", "content": f"Cancel order {order}"}]}
    call = {"role": "assistant", "parts": [{"type": "tool_call", "id": "t1",
                                            "name": "cancel_order",
                                            "arguments": {"order_id": order}}]}
    result = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "t1",
                                         "response": {"cancelled": True}}]}
    done = {"role": "assistant", "parts": [{"type": "text", "content": "Cancelled."}]}
    inputs = [user, call] + ([result] if with_result else [])
    return inputs, [done]


def evaluation(label: str, score: float) -> dict[str, Any]:
    return {"name": "gen_ai.evaluation.result", "timeUnixNano": "1", "attributes": [
        {"key": "gen_ai.evaluation.score.label", "value": {"stringValue": label}},
        {"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": score}}]}


def imported(tmp_path: Path, lines: list[str], *flags: str) -> tuple[int, Path, Path]:
    src = tmp_path / "otlp.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "suite"
    code = main(["import-traces", "--from", str(src), "--env", "desk", "--out", str(out),
                 *flags])
    return code, src, out


def test_sessions_are_grouped_by_trace_across_lines_and_labelled_by_evaluations(
    tmp_path: Path
) -> None:
    a_in, a_out = conversation("A-1")
    b_in, b_out = conversation("B-2")
    lines = [
        line(span("aa" * 16, 1, "invoke_agent desk", {"gen_ai.operation.name": "invoke_agent"},
                  [evaluation("success", 0.9)])),
        line(chat("aa" * 16, 2, a_in[:1], a_in[1:2]), chat("bb" * 16, 3, b_in, b_out,
                                                           **{"gen_ai.usage.cost": 0.002})),
        line(chat("aa" * 16, 4, a_in, a_out)),
        line(span("bb" * 16, 5, "invoke_agent desk", {}, [evaluation("failure", 0.1)])),
    ]
    code, _, out = imported(tmp_path, lines)
    assert code == 0
    project = load_project(out / "gate.yaml")
    assert [lt.task.instruction for lt in project.tasks] == ["Cancel order A-1"]
    assert [c.args for c in project.tasks[0].fixture.reference_trajectory] == [
        {"order_id": "A-1"}]
    assert len(project.needs_label) == 1  # trace bb was judged a failure
    summary = json.loads((out / "traffic-summary.json").read_text())
    assert summary["labels"] == {"bad": 1, "good": 1}
    assert summary["cost_usd"]["n"] == 1


def test_execute_tool_spans_fill_in_results_and_tool_definitions_are_used(
    tmp_path: Path
) -> None:
    inputs, outputs = conversation("C-3", with_result=False)
    definitions = [{"type": "function", "name": "cancel_order", "description": "Cancel one.",
                    "parameters": {"type": "object", "$schema": "x", "properties": {
                        "order_id": {"type": ["string", "null"], "format": "id"}},
                        "required": ["order_id"], "additionalProperties": True}}]
    tool = span("cc" * 16, 2, "execute_tool cancel_order", {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.call.id": "t1",
        "gen_ai.tool.call.result": json.dumps({"cancelled": True})})
    lines = [line(chat("cc" * 16, 3, inputs, outputs,
                       **{"gen_ai.tool.definitions": json.dumps(definitions)}), tool)]
    code, _, out = imported(tmp_path, lines, "--assume-good")
    assert code == 0
    lt = load_project(out / "gate.yaml").tasks[0]
    assert lt.fixture.initial_state["recorded"][0]["result"] == {"cancelled": True}
    tools = (out / "tools" / "desk" / "cancel_order.yaml").read_text()
    assert "Cancel one." in tools
    assert "$schema" not in tools
    assert "format" not in tools


def test_malformed_otlp_is_reported_by_line_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good_in, good_out = conversation("D-4")
    no_messages = span("ee" * 16, 1, "chat m", {"gen_ai.operation.name": "chat"})
    odd_value = span("ff" * 16, 1, "chat m", {})
    odd_value["attributes"] = [{"key": "x", "value": {"weirdValue": 1}}]
    garbled = chat("ab" * 16, 1, [], [])
    garbled["attributes"][1]["value"] = {"stringValue": "[{not json"}
    no_trace = span("", 1, "chat m", {})
    lines = [
        line(chat("dd" * 16, 1, good_in, good_out)),  # 1: fine
        line(chat("dd" * 16, 9, good_in, good_out))[:-30],  # 2: truncated
        line(no_messages),  # 3: content capture was off
        line(odd_value),  # 4: unknown attribute value kind
        line(garbled),  # 5: messages that are not JSON
        line(no_trace),  # 6: a span without a trace id
        json.dumps({"resourceLogs": []}),  # 7: not traces
    ]
    code, src, out = imported(tmp_path, lines, "--assume-good")
    assert code == 0
    err = capsys.readouterr().err
    for number in range(2, 8):
        assert f"{src}:{number}: " in err
    assert "content capture" in err
    assert "weirdValue" in err
    assert "Traceback" not in err
    assert len(load_project(out / "gate.yaml").tasks) == 1
