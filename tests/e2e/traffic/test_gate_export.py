"""A gate run's own OpenTelemetry export (the spans ``gate export-otel`` sends, with message
content, written in the Collector file exporter's format) imported back: the same GenAI
conventions as any agent's, and the imported suite validates, smokes and finds the
regression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from otlp_file import otlp_json_line

from gate.cli import main
from gate.report.otel import build_spans

WRITES = ["--writes", "cancel_*", "--writes", "refund_*", "--writes", "exchange_*",
          "--writes", "update_*", "--writes", "restart_*", "--writes", "resolve_*"]


@pytest.mark.slow
def test_a_gate_runs_export_becomes_a_suite_that_finds_the_regression(
    tmp_path: Path, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/expert",
                 "--out", str(run)]) == 0
    spans, _ = build_spans(run, capture=True)
    traces = tmp_path / "gate-traces.jsonl"
    traces.write_text("".join(otlp_json_line(spans[i:i + 50]) + "\n"
                              for i in range(0, len(spans), 50)))
    capsys.readouterr()
    code = main(["import-traces", "--from", str(traces), "--env", "mine",
                 "--out", str(tmp_path / "suite"), *WRITES])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    config = str(tmp_path / "suite" / "gate.yaml")
    assert main(["validate", "--config", config]) == 0
    assert main(["smoke", "--config", config, "--out", str(tmp_path / "smoke")]) == 0
    code = main(["sweep", "--config", config, "--candidate", "mock/expert@0.8",
                 "--baseline", "mock/expert", "--out", str(tmp_path / "sweep")])
    results = json.loads((tmp_path / "sweep" / "results.json").read_text())
    assert (code, results["verdict"]) == (1, "regression")


