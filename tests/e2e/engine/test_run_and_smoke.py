"""`gate run` and `gate smoke` on the simulated provider: artifacts, fields, figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.cli import main
from gate.records import Trial
from gate.rundir.audit import read_audit
from gate.rundir.jsonl import read_jsonl

ARM_FIELDS = {"trials", "successes", "success_rate", "pass_k", "provider_errors",
              "trials_lost_to_provider", "cost_usd", "cost_per_success_usd", "p50_s", "p95_s"}


def gate(*args: str) -> int:
    return main(list(args))


def test_expert_solves_every_task_and_writes_the_run_directory(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert gate("run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/expert",
                "--rounds", "1", "--out", str(out)) == 0
    for name in ("manifest.json", "audit.jsonl", "trials.jsonl", "heartbeat.jsonl",
                 "results.json"):
        assert (out / name).exists(), name
    results = json.loads((out / "results.json").read_text())
    arm = results["arms"]["run"]
    assert set(arm) >= ARM_FIELDS
    assert arm["trials"] == len(results["tasks"]) >= 40
    assert arm["success_rate"] == 1.0
    assert results["status"] == "complete"
    trials = read_jsonl(out / "trials.jsonl", Trial)
    audit = read_audit(out / "audit.jsonl")  # one record per attempt
    # every scored trial's response ids are in the audit log, and the counts agree
    assert sum(len(t.response_ids) for t in trials) == sum(
        1 for a in audit if a.outcome == "ok")
    assert results["evidence"]["response_ids"] == len(audit)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scope"]["cells"] == len(trials)
    assert all(len(h) == 64 for h in manifest["files_sha256"].values())
    assert any(p.startswith("fixtures/") for p in manifest["files_sha256"])
    assert "succeeded (100.0%)" in capsys.readouterr().out


def test_random_is_near_the_floor(project_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert gate("run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/random",
                "--rounds", "1", "--out", str(out)) == 0
    arm = json.loads((out / "results.json").read_text())["arms"]["run"]
    assert arm["success_rate"] <= 0.15
    assert arm["metrics"]["invalid_actions"] + arm["metrics"]["wrong_fixes"] > 0


def test_garbled_and_looper_are_scored_as_model_failures(project_dir: Path, tmp_path: Path) -> None:
    for model, metric in (("mock/garbled", "invalid_actions"), ("mock/looper", "repeated_calls")):
        out = tmp_path / model.replace("/", "_")
        assert gate("run", "--config", str(project_dir / "gate.yaml"), "--model", model,
                    "--rounds", "1", "--out", str(out)) == 0
        arm = json.loads((out / "results.json").read_text())["arms"]["run"]
        assert arm["success_rate"] is not None
        assert arm["success_rate"] < 0.2
        assert arm["metrics"][metric] > 0
        assert arm["provider_errors"]["total"] == 0


def test_same_seed_same_trials(project_dir: Path, tmp_path: Path) -> None:
    def scores(out: Path) -> list[tuple[str, bool, float, int]]:
        gate("run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/expert@0.8",
             "--rounds", "1", "--out", str(out), "--seed", "7")
        return [(t.task, bool(t.success), t.reward or 0.0, t.steps or 0)
                for t in read_jsonl(out / "trials.jsonl", Trial)]

    first = sorted(scores(tmp_path / "a"))
    assert first == sorted(scores(tmp_path / "b"))
    assert 0 < sum(s for _, s, _, _ in first) < len(first)


def test_refuses_to_overwrite_a_run(project_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ("run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/expert",
            "--rounds", "1", "--out", str(out))
    assert gate(*args) == 0
    assert gate(*args) == 4
    assert "already holds a run" in capsys.readouterr().err


def test_unknown_model_is_invalid_input(project_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert gate("run", "--config", str(project_dir / "gate.yaml"), "--model", "vendor/unknown",
                "--rounds", "1", "--out", str(tmp_path / "x")) == 4
    assert "--model: model 'vendor/unknown' is not in models.yaml" in capsys.readouterr().err


def test_smoke_passes_and_writes_smoke_json(project_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "smoke"
    assert gate("smoke", "--config", str(project_dir / "gate.yaml"), "--out", str(out)) == 0
    smoke = json.loads((out / "smoke.json").read_text())
    assert smoke["ok"] is True
    assert {c["name"] for c in smoke["checks"]} >= {
        "expert solves every task", "random scores every task", "heartbeat fires",
        "402 trips the circuit breaker"}
    assert len(smoke["tasks"]) >= 40
    assert all(t["expert"]["success"] for t in smoke["tasks"])
    assert all(t["random"]["reward"] is not None for t in smoke["tasks"])
    captured = capsys.readouterr()
    assert "[CIRCUIT BREAKER]" in captured.err
    # the demo's reader is told the breaker line is the simulated 402, before it appears
    label = captured.err.index("the [CIRCUIT BREAKER] line below is expected")
    assert label < captured.err.index("[CIRCUIT BREAKER] HTTP 402")
    assert "[gate] heartbeat:" not in captured.err  # the 20 ms beats are counted, not shown
    assert (out / "breaker" / "PARTIAL-RESULTS.json").exists()


def test_smoke_names_a_task_the_expert_cannot_solve(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scorer that breaks after validation (here: the environment's judgement) is caught."""
    from gate.environments.base import EnvOutcome
    from gate.environments.registry import EnvironmentRegistry

    env_cls = EnvironmentRegistry(project_dir, {}, "gate.yaml").get("orders")
    original = env_cls.outcome

    def broken(self: object) -> EnvOutcome:
        result = original(self)  # type: ignore[arg-type]
        if getattr(self, "seed", 0) != 0:  # validation replays with seed 0; runs do not
            return EnvOutcome(False, 0.0, {"broken": True})
        return result

    monkeypatch.setattr(env_cls, "outcome", broken)
    assert gate("smoke", "--config", str(project_dir / "gate.yaml"),
                "--out", str(tmp_path / "s")) == 1
    out = capsys.readouterr().out
    assert "[FAIL] expert solves every task" in out
    assert "broken task or fixture: orders-" in out
