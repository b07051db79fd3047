"""``gate plan`` (was .github/gate_plan.py): one budget per PR, stage 1 by default, a later
stage only with the `gate:continue` label, decided sweeps not run again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_github import run_gate

from gate.records import StageRun, Stages
from gate.rundir import RunDir


def plan(capsys: pytest.CaptureFixture[str], tmp: Path, sweeps: list[dict[str, str]], *,
         go_on: bool = False) -> dict[str, str]:
    code = run_gate("plan", "--sweeps", json.dumps({"include": sweeps}), "--shards", "3",
                    "--pr-budget-usd", "6", "--continue", "true" if go_on else "false",
                    "--runs", str(tmp / "runs"))
    assert code == 0
    out = capsys.readouterr().out
    return dict(line.split("=", 1) for line in out.splitlines())


def stages(tmp: Path, sweep: str, next_stage: int | None, spent_usd: float) -> None:
    """stages.json as `gate merge` writes it, after stage 1."""
    (tmp / "runs" / sweep).mkdir(parents=True)
    RunDir(tmp / "runs" / sweep).write_stages(Stages(
        max=3, run=[StageRun(stage=1, shards=3, trials=12, spent_usd=spent_usd)],
        next_stage=next_stage, ceiling_usd=3.0, spent_usd=spent_usd))


def test_first_stage_splits_the_pr_budget(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = plan(capsys, tmp_path, [{"id": "a"}, {"id": "b"}])
    include = json.loads(out["matrix"])["include"]
    assert out["any"] == "true"
    assert [(e["id"], e["stage"], e["shard"]) for e in include] == [
        ("a", 1, 1), ("a", 1, 2), ("a", 1, 3), ("b", 1, 1), ("b", 1, 2), ("b", 1, 3)]
    assert {e["stage_budget_usd"] for e in include} == {"3.000000"}


def test_next_stage_needs_the_label_and_gets_what_is_left(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stages(tmp_path, "a", 2, 1.25)
    stages(tmp_path, "b", None, 0.5)  # decided
    assert plan(capsys, tmp_path, [{"id": "a"}, {"id": "b"}])["any"] == "false"
    include = json.loads(plan(capsys, tmp_path, [{"id": "a"}, {"id": "b"}],
                              go_on=True)["matrix"])["include"]
    assert {(e["id"], e["stage"]) for e in include} == {("a", 2)}
    assert {e["stage_budget_usd"] for e in include} == {"1.750000"}


def test_input_that_is_not_gate_changes_output_exits_4(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_gate("plan", "--sweeps", "[1, 2]", "--shards", "2", "--pr-budget-usd", "5",
                    "--runs", str(tmp_path))
    assert code == 4
    assert "--sweeps" in capsys.readouterr().err


def test_a_stages_file_that_is_not_gate_merges_record_exits_4(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "stages.json").write_text('{"next_stage": 2}')
    code = run_gate("plan", "--sweeps", json.dumps({"include": [{"id": "a"}]}), "--shards", "2",
                    "--pr-budget-usd", "5", "--continue", "true", "--runs", str(tmp_path / "runs"))
    assert code == 4
    assert "stages.json" in capsys.readouterr().err


def test_every_shard_of_a_sweep_gets_one_plan_salt(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    include = json.loads(plan(capsys, tmp_path, [{"id": "a"}, {"id": "b"}])["matrix"])["include"]
    salts = {e["id"]: {x["plan_salt"] for x in include if x["id"] == e["id"]} for e in include}
    assert all(len(s) == 1 for s in salts.values())  # one plan for all the sweep's shards
    assert salts["a"] != salts["b"]  # drawn fresh, per sweep
    again = json.loads(plan(capsys, tmp_path, [{"id": "a"}])["matrix"])["include"]
    assert {e["plan_salt"] for e in again} != salts["a"]  # and per run of stage 1
