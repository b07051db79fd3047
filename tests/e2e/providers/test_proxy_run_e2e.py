"""``gate run`` end to end through an HTTP proxy, with the provider's host name resolvable only
by the proxy (as behind a corporate egress proxy); and the same proxy refusing with 407: a halt
that names the cause, before any call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from netfield import LoopServer, Proxy, Recorder

from gate.cli import main
from gate.errors import EXIT_HALTED
from gate.project.load import load_project
from gate.records import PartialResults, read_record
from gate.simulate.models import MOCK_PRICES, MockProvider
from gate.simulate.server import MockServer

HOST = "provider.gate-test.invalid"  # resolves nowhere but at the proxy


def _remote_provider(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GATE_TEST_KEY", "sk-test-through-proxy")
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    cfg = project_dir / "gate.yaml"
    cfg.write_text(cfg.read_text().replace("providers:\n", (
        "providers:\n  remote:\n    type: openai\n"
        f"    base_url: http://{HOST}/v1\n"
        "    api_key_env: GATE_TEST_KEY\n    pricing: live\n    concurrency: 4\n"), 1))
    return cfg


def test_gate_run_through_a_proxy_that_alone_resolves_the_provider(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = _remote_provider(project_dir, monkeypatch)
    project = load_project(str(cfg))
    with MockServer(MockProvider(project, name="remote"), MOCK_PRICES, seed=1) as origin:
        port = int(origin.base_url.split(":")[2].split("/")[0])
        proxy = Proxy(names={HOST: ("127.0.0.1", port)})
        with LoopServer(proxy) as px:
            monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{px.port}")
            out = tmp_path / "run"
            code = main(["run", "--config", str(cfg), "--model", "mock/expert",
                         "--provider", "remote", "--rounds", "1", "--out", str(out)])
            received = len(origin.requests)
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    attempts = sum(arm["attempts"] for arm in results["arms"].values())
    assert attempts == received > 0  # every completion went through the proxy
    assert f"GET http://{HOST}/v1/models" in proxy.seen
    assert sum(s.startswith(f"POST http://{HOST}/v1/chat/completions") for s in proxy.seen) \
        == received


def test_gate_run_behind_a_proxy_answering_407_halts_before_any_call(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = _remote_provider(project_dir, monkeypatch)
    with LoopServer(Proxy(require_auth=True)) as px:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{px.port}")
        out = tmp_path / "run"
        code = main(["run", "--config", str(cfg), "--model", "mock/expert",
                     "--provider", "remote", "--rounds", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_HALTED
    assert (f"[CIRCUIT BREAKER] remote: cannot fetch the live price list GET "
            f"http://{HOST}/v1/models (HTTP 407 from the proxy: proxy_refused)") in err
    partial = read_record(out / "PARTIAL-RESULTS.json", PartialResults)
    assert partial.halt is not None
    assert partial.halt.kind == "circuit_breaker"
    assert "proxy_refused" in partial.halt.reason
    assert partial.evidence.attempts == 0
    report = (out / "report.md").read_text()  # markdown: the underscore escaped
    assert "> **Halted: " in report
    assert "(HTTP 407 from the proxy: proxy\\_refused)" in report



def test_a_provider_gone_after_setup_is_connection_refused_in_audit_results_and_report(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The provider answers the price list and the balance, then stops listening: every
    completion attempt is ``connection_refused`` (one attempt per call, not retried), in
    audit.jsonl, counted by kind in results.json and named in the report."""
    listing = {"data": [{"id": "mock/expert", "pricing": {"prompt": "0.000001",
                                                          "completion": "0.000002"}}]}
    origin = Recorder(models=listing)
    with LoopServer(origin) as up:
        origin.gone_after_key = up.stop_listening
        cfg = _remote_provider(project_dir, monkeypatch)
        cfg.write_text(cfg.read_text().replace(f"http://{HOST}/v1",
                                               f"http://127.0.0.1:{up.port}/v1"))
        out = tmp_path / "run"
        main(["run", "--config", str(cfg), "--model", "mock/expert", "--provider", "remote",
              "--rounds", "1", "--out", str(out)])
    assert [h.target.rsplit("/", 1)[1] for h in origin.heads] == ["models", "key"]
    name = "results.json" if (out / "results.json").exists() else "PARTIAL-RESULTS.json"
    results = json.loads((out / name).read_text())
    by_kind: dict[str, int] = {}
    for arm in results["arms"].values():
        for kind, count in arm["provider_errors"]["by_kind"].items():
            by_kind[kind] = by_kind.get(kind, 0) + count
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    outcomes = [a["outcome"] for a in audit if a.get("phase") != "started"]
    assert outcomes
    assert set(outcomes) == {"connection_refused"}
    assert all(a["attempt"] == 1 for a in audit)  # never retried
    assert by_kind == {"connection_refused": len(outcomes)}
    report = (out / "report.md").read_text()  # markdown: the underscore escaped
    assert f"connection\\_refused {len(outcomes)}" in report
