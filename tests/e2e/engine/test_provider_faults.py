"""The engine against `gate mock-server` faults, end to end through `gate run`."""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from gate.cli import main
from gate.config.schema import FaultConfig
from gate.simulate.models import MOCK_PRICES, MockProvider
from gate.simulate.server import MockServer, ServerOptions


def _set_faults(project_dir: Path, faults: str) -> None:
    cfg = project_dir / "gate.yaml"
    text = cfg.read_text()
    cfg.write_text(text.replace("    type: mock\n", f"    type: mock\n    faults: {faults}\n", 1))


def _events(log: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_fault_counts_equal_the_server_log_kind_by_kind(project_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "faults.jsonl"
    _set_faults(project_dir, f'{{rate: 0.2, log: "{log}"}}')
    out = tmp_path / "run"
    code = main(["run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/expert",
                 "--rounds", "1", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    arm = results["arms"]["run"]
    injected = Counter(e["error_kind"] for e in _events(log) if e["event"] == "fault")
    assert sum(injected.values()) > 20
    assert len(injected) == 5  # rate_limited, server_error, error_in_body, malformed, timeout
    assert arm["provider_errors"]["by_kind"] == dict(injected)
    assert arm["provider_errors"]["total"] == sum(injected.values())
    # none is a model failure: every scored trial of the expert succeeded
    assert arm["successes"] == arm["trials"]
    assert arm["trials"] + arm["trials_lost_to_provider"] == 40
    assert code == 0


def test_402_halts_and_nothing_is_sent_after_it_but_calls_in_flight(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "faults.jsonl"
    _set_faults(project_dir, f'{{payment_required_after: 30, log: "{log}"}}')
    out = tmp_path / "run"
    code = main(["run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/expert",
                 "--rounds", "1", "--out", str(out)])
    assert code == 2
    assert (out / "PARTIAL-RESULTS.json").exists()
    assert not (out / "results.json").exists()
    err = capsys.readouterr().err
    assert re.search(r"\[CIRCUIT BREAKER\] HTTP 402 .* at task \S+, round 1", err), err
    requests = [e for e in _events(log) if e["event"] == "request"]
    first_402 = next(i for i, e in enumerate(requests) if e["fault"] == "402")
    after = requests[first_402 + 1:]
    concurrency = 8  # run.concurrency in gate.yaml: at most the other calls in flight
    assert len(after) <= concurrency - 1
    partial = json.loads((out / "PARTIAL-RESULTS.json").read_text())
    assert partial["status"] == "halted"
    assert partial["scope"]["counts"]["not_run"] > 0
    assert "not run" in partial["missing"]


def test_unpriced_model_fails_closed_before_any_completion(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "faults.jsonl"
    _set_faults(project_dir, f'{{log: "{log}"}}')
    code = main(["run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/expert@0.75",
                 "--rounds", "1", "--out", str(tmp_path / "run")])
    assert code == 4
    assert "mock/expert@0.75" in capsys.readouterr().err
    assert not log.exists() or not [e for e in _events(log) if e["event"] == "request"]


def test_the_api_key_appears_in_no_artifact_and_no_output(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gate.project.load import load_project

    key = "sk-or-v1-THIS-IS-THE-SECRET-0123456789"
    monkeypatch.setenv("GATE_TEST_KEY", key)
    backend = MockProvider(load_project(project_dir / "gate.yaml"))
    faults = FaultConfig(rate=0.2, kinds=["429", "500", "error_in_body", "malformed_json"])
    with MockServer(backend, MOCK_PRICES, faults, seed=3,
                    options=ServerOptions(api_key=key, retry_after_s=0.01)) as server:
        cfg = project_dir / "gate.yaml"
        cfg.write_text(cfg.read_text().replace("providers:\n", (
            "providers:\n  local:\n    type: openai\n"
            f"    base_url: {server.base_url}\n    api_key_env: GATE_TEST_KEY\n"
            "    retry: {initial_wait_s: 0.01, max_wait_s: 0.02, jitter_s: 0, cooldown_s: 0.05}\n"
        ), 1))
        out = tmp_path / "run"
        code = main(["--verbose", "run", "--config", str(cfg), "--model", "mock/expert",
                     "--provider", "local", "--rounds", "1", "--out", str(out)])
    assert code == 0
    assert server.requests  # the key was really used
    captured = capsys.readouterr()
    texts = {"stdout": captured.out, "stderr": captured.err}
    texts.update({p.name: (gzip.decompress(p.read_bytes()).decode() if p.suffix == ".gz"
                           else p.read_text()) for p in out.iterdir()})
    leaked = [name for name, text in texts.items() if key in text or key[8:] in text]
    assert leaked == []
    assert len(texts) >= 8  # transcripts.jsonl.gz among them, read decompressed
    assert os.environ["GATE_TEST_KEY"] == key


def test_provider_balance_lowers_the_ceiling_and_the_breaker_halts(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gate.project.load import load_project

    monkeypatch.setenv("GATE_TEST_KEY", "sk-test-balance")
    backend = MockProvider(load_project(project_dir / "gate.yaml"))
    with MockServer(backend, MOCK_PRICES, None, seed=1,
                    options=ServerOptions(limit_remaining=0.01)) as server:
        cfg = project_dir / "gate.yaml"
        cfg.write_text(cfg.read_text().replace("providers:\n", (
            "providers:\n  local:\n    type: openai\n"
            f"    base_url: {server.base_url}\n    api_key_env: GATE_TEST_KEY\n"), 1))
        out = tmp_path / "run"
        code = main(["run", "--config", str(cfg), "--model", "mock/expert", "--provider", "local",
                     "--rounds", "1", "--out", str(out)])
        spent_on_server = server.spent_usd
    assert code == 2
    err = capsys.readouterr().err
    assert re.search(r"\[CIRCUIT BREAKER\] budget ceiling \$0\.01.* at task \S+, round 1", err), err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["budget"]["source"] == "provider_balance"
    assert manifest["budget"]["ceiling_usd"] == 0.01
    assert spent_on_server <= 0.01
    assert "the provider's remaining balance" in (out / "report.md").read_text()
