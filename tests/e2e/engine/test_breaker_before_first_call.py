"""A circuit breaker before the first call (the provider's balance endpoint unreachable while
the run is being set up) is a halt like any other: the ``[CIRCUIT BREAKER]`` line, a
PARTIAL-RESULTS.json in --out, exit 2. Never exit 4, never a traceback."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from gate.cli import main
from gate.errors import (
    EXIT_CODES,
    EXIT_HALTED,
    EXIT_INVALID,
    CircuitBreakerError,
    ConfigError,
    GateError,
    PausedError,
    ResumeError,
    exit_code_for,
)
from gate.project.load import load_project
from gate.records import PartialResults, Smoke, SmokeTask, read_record, write_record
from gate.rundir import RunDir

LINE = re.compile(r"^\[CIRCUIT BREAKER\] local: cannot read the remaining balance GET "
                  r"http://127\.0\.0\.1:\d+/v1/key \(connection_refused: [^\n]*\) "
                  r"at task -, round 0$", re.M)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unreachable_provider(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """gate.yaml with provider ``local``: table prices (no price-list call), and a base URL on
    a loopback port nobody listens on, so ``GET /key`` (the balance) cannot be read."""
    monkeypatch.setenv("GATE_TEST_KEY", "sk-test-unreachable")
    cfg = project_dir / "gate.yaml"
    cfg.write_text(cfg.read_text().replace("providers:\n", (
        "providers:\n  local:\n    type: openai\n"
        f"    base_url: http://127.0.0.1:{_closed_port()}/v1\n"
        "    api_key_env: GATE_TEST_KEY\n    pricing: table\n"
        "    prices: {mock/expert: {prompt: 0.000001, completion: 0.000002},"
        " mock/expert@0.8: {prompt: 0.000001, completion: 0.000002}}\n"), 1))
    return cfg


def _assert_halted_before_any_task(out: Path, err: str) -> None:
    assert LINE.search(err), err
    assert "Traceback" not in err
    partial = read_record(out / "PARTIAL-RESULTS.json", PartialResults)
    assert partial.status == "halted"
    assert partial.halt is not None
    assert (partial.halt.kind, partial.halt.task, partial.halt.round) == (
        "circuit_breaker", "-", 0)
    assert partial.scope.counts.not_run == partial.scope.planned > 0
    assert partial.evidence.attempts == 0  # nothing reached the provider
    assert not (out / "results.json").exists()
    assert "> **Halted: not decided, the sweep stopped**" in (out / "report.md").read_text()


def test_run_with_an_unreadable_balance_halts_with_exit_2(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = _unreachable_provider(project_dir, monkeypatch)
    out = tmp_path / "run"
    code = main(["run", "--config", str(cfg), "--model", "mock/expert", "--provider", "local",
                 "--rounds", "1", "--out", str(out)])
    _assert_halted_before_any_task(out, capsys.readouterr().err)
    assert code == EXIT_HALTED
    assert main(["verify", "--run", str(out)]) == 0


def test_sweep_with_an_unreadable_balance_halts_with_exit_2(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = _unreachable_provider(project_dir, monkeypatch)
    project = load_project(str(cfg))
    smoke = tmp_path / "smoke"  # a passing smoke for exactly this config (rule 2)
    smoke.mkdir()
    tasks = [SmokeTask(task=lt.task.id) for lt in project.tasks]  # it covered every task
    write_record(smoke / "smoke.json", Smoke(ok=True, checks=[], tasks=tasks,
                                             config_sha256=project.config_sha256,
                                             files_sha256=project.hashes, seconds=0.0))
    out = tmp_path / "sweep"
    code = main(["sweep", "--config", str(cfg), "--candidate", "mock/expert@0.8",
                 "--baseline", "mock/expert", "--provider", "local", "--smoke", str(smoke),
                 "--out", str(out)])
    _assert_halted_before_any_task(out, capsys.readouterr().err)
    assert code == EXIT_HALTED
    assert json.loads((out / "manifest.json").read_text())["kind"] == "sweep"


def test_one_table_maps_errors_to_exit_codes() -> None:
    assert exit_code_for(CircuitBreakerError("x")) == EXIT_HALTED
    assert exit_code_for(PausedError("x")) == EXIT_HALTED
    assert exit_code_for(ConfigError([])) == EXIT_INVALID
    assert exit_code_for(ResumeError("x")) == EXIT_INVALID

    class NewError(CircuitBreakerError):
        pass

    assert exit_code_for(NewError("x")) == EXIT_HALTED  # the most specific entry wins
    assert all(issubclass(cls, GateError) for cls in EXIT_CODES)


def test_a_breaker_escaping_to_the_cli_is_still_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import gate.commands

    def boom(_args: object) -> int:
        raise CircuitBreakerError("HTTP 402 from the provider")

    monkeypatch.setattr(gate.commands, "cmd_validate", boom)
    assert main(["validate"]) == EXIT_HALTED
    assert "[CIRCUIT BREAKER] HTTP 402 from the provider at task -, round 0" in (
        capsys.readouterr().err)


def test_a_shard_with_an_unreadable_balance_records_its_halt_and_merges_as_halted(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The breaker raised while a shard opens its providers: the shard ends with its halt in
    shard.json (not an unfinished shard), and the merge reports the sweep halted."""
    cfg = _unreachable_provider(project_dir, monkeypatch)
    project = load_project(str(cfg))
    smoke = tmp_path / "smoke"  # a passing smoke for exactly this config and its tasks (rule 2)
    smoke.mkdir()
    RunDir(smoke).write_smoke(Smoke(
        ok=True, checks=[], tasks=[SmokeTask(task=lt.task.id) for lt in project.tasks],
        config_sha256=project.config_sha256, files_sha256=project.hashes, seconds=0.0))
    shard = tmp_path / "shard"
    code = main(["sweep", "--config", str(cfg), "--candidate", "mock/expert@0.8",
                 "--baseline", "mock/expert", "--provider", "local", "--smoke", str(smoke),
                 "--out", str(shard), "--shard", "1/1", "--stage", "1", "--stages", "1",
                 "--plan-salt", "1"])
    err = capsys.readouterr().err
    assert LINE.search(err), err
    assert "Traceback" not in err
    assert code == EXIT_HALTED
    info = RunDir(shard).shard()
    assert info is not None
    assert info.trials == 0
    assert info.halt is not None
    assert (info.halt.kind, info.halt.task, info.halt.round) == ("circuit_breaker", "-", 0)
    out = tmp_path / "merged"
    assert main(["merge", "--out", str(out), str(shard)]) == EXIT_HALTED
    partial = read_record(out / "PARTIAL-RESULTS.json", PartialResults)
    assert partial.status == "halted"
    assert main(["verify", "--run", str(out)]) == 0
