"""The workflow's stage planner (.github/gate_plan.py): one budget per PR, stage 1 by default,
a later stage only with the `gate:continue` label, decided sweeps not run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLAN = Path(__file__).resolve().parents[2] / ".github" / "gate_plan.py"


def plan(tmp: Path, sweeps: list[dict[str, str]], *, go_on: bool = False) -> dict[str, str]:
    env = {**os.environ, "SWEEPS": json.dumps({"include": sweeps}), "GATE_SHARDS": "3",
           "GATE_MAX_STAGES": "3", "GATE_PR_BUDGET_USD": "6",
           "CONTINUE": "true" if go_on else "false"}
    out = subprocess.run([sys.executable, str(PLAN)], cwd=tmp, env=env, check=True,
                         capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def stages(tmp: Path, sweep: str, data: dict[str, object]) -> None:
    (tmp / "runs" / sweep).mkdir(parents=True)
    (tmp / "runs" / sweep / "stages.json").write_text(json.dumps(data))


def test_first_stage_splits_the_pr_budget(tmp_path: Path) -> None:
    out = plan(tmp_path, [{"id": "a"}, {"id": "b"}])
    include = json.loads(out["matrix"])["include"]
    assert out["any"] == "true"
    assert [(e["id"], e["stage"], e["shard"]) for e in include] == [
        ("a", 1, 1), ("a", 1, 2), ("a", 1, 3), ("b", 1, 1), ("b", 1, 2), ("b", 1, 3)]
    assert {e["stage_budget_usd"] for e in include} == {"3.000000"}


def test_next_stage_needs_the_label_and_gets_what_is_left(tmp_path: Path) -> None:
    stages(tmp_path, "a", {"next_stage": 2, "spent_usd": 1.25})
    stages(tmp_path, "b", {"next_stage": None, "spent_usd": 0.5})  # decided
    assert plan(tmp_path, [{"id": "a"}, {"id": "b"}])["any"] == "false"
    include = json.loads(plan(tmp_path, [{"id": "a"}, {"id": "b"}], go_on=True)["matrix"])[
        "include"]
    assert {(e["id"], e["stage"]) for e in include} == {("a", 2)}
    assert {e["stage_budget_usd"] for e in include} == {"1.750000"}


def test_every_shard_of_a_sweep_gets_one_plan_salt(tmp_path: Path) -> None:
    include = json.loads(plan(tmp_path, [{"id": "a"}, {"id": "b"}])["matrix"])["include"]
    salts = {e["id"]: {x["plan_salt"] for x in include if x["id"] == e["id"]} for e in include}
    assert all(len(s) == 1 for s in salts.values())  # one plan for all the sweep's shards
    assert salts["a"] != salts["b"]  # drawn fresh, per sweep
    again = json.loads(plan(tmp_path, [{"id": "a"}])["matrix"])["include"]
    assert {e["plan_salt"] for e in again} != salts["a"]  # and per run of stage 1
    # a later stage continues the merged run's plan: the salt its manifest recorded
    stages(tmp_path, "c", {"next_stage": 2, "spent_usd": 0.0})
    (tmp_path / "runs" / "c" / "manifest.json").write_text(json.dumps({"plan_salt": "5eed"}))
    later = json.loads(plan(tmp_path, [{"id": "c"}], go_on=True)["matrix"])["include"]
    assert {e["plan_salt"] for e in later} == {"5eed"}
