"""A fresh plan per run: the plan salt is drawn at random when a sweep starts, recorded in
the manifest, and read back by --resume, gate verify, the shards and gate merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.cli import main
from gate.engine.plan import plan_units
from gate.engine.runner import trial_seed
from gate.rundir.jsonl import read_jsonl

ARMS = ("--candidate", "mock/expert@0.99", "--baseline", "mock/expert")


def sweep(project_dir: Path, out: Path, *extra: str) -> int:
    return main(["sweep", "--config", str(project_dir / "gate.yaml"), *ARMS, "--out", str(out),
                 *extra])


def manifest(run: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((run / "manifest.json").read_text())  # type: ignore[no-any-return]


def drawn(m: dict, salt: str) -> list[list]:  # type: ignore[type-arg]
    s = m["scope"]
    return [[u.index, u.task, u.batch] for u in plan_units(
        s["schedule"], s["tasks"], s["max_rounds"], salt, m["statistics"]["batch"])]


def test_each_run_draws_its_own_plan_and_records_it(project_dir: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    sweep(project_dir, a, "--max-rounds", "1")
    sweep(project_dir, b, "--max-rounds", "1")
    ma, mb = manifest(a), manifest(b)
    assert ma["plan_salt"] != mb["plan_salt"]  # random, not a function of run.seed
    assert ma["seed"] == mb["seed"]
    for m in (ma, mb):
        assert m["scope"]["units"] == drawn(m, m["plan_salt"])
    assert ma["scope"]["units"] != mb["scope"]["units"]
    # trial seeds follow (task, occurrence), so both runs give a task's j-th unit one seed
    for run in (a, b):
        seen: dict[str, int] = {}
        order = {}
        for i, t, _b in manifest(run)["scope"]["units"]:
            seen[t] = seen.get(t, 0) + 1
            order[f"{t}/r{i}"] = (t, seen[t])
        for trial in read_jsonl(run / "trials.jsonl"):
            task, occurrence = order[f"{trial['task']}/r{trial['round']}"]
            assert trial["seed"] == trial_seed(ma["seed"], task, occurrence)


def test_resume_keeps_the_salt_and_refuses_another(project_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert sweep(project_dir, out, "--max-rounds", "1") == 3
    first = manifest(out)
    # continued: the same plan, longer (a new salt would not extend the plan: refused)
    assert sweep(project_dir, out, "--resume", "--max-rounds", "2") != 4
    second = manifest(out)
    assert len(second["continuations"]) == 1
    assert second["plan_salt"] == first["plan_salt"]
    assert second["scope"]["units"][: len(first["scope"]["units"])] == first["scope"]["units"]
    assert second["scope"]["units"] == drawn(second, first["plan_salt"])
    assert sweep(project_dir, out, "--resume", "--plan-salt", "abc") == 4
    assert main(["verify", "--run", str(out)]) == 0


def test_verify_rederives_the_plan_from_the_salt(project_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    sweep(project_dir, out, "--max-rounds", "1", "--plan-salt", "c0ffee")
    assert manifest(out)["plan_salt"] == "c0ffee"
    assert main(["verify", "--run", str(out)]) == 0
    m = manifest(out)
    m["plan_salt"] = "c0ffef"  # a plan that was chosen, not drawn from its salt
    (out / "manifest.json").write_text(json.dumps(m))
    capsys.readouterr()
    assert main(["verify", "--run", str(out)]) != 0
    assert "plan_salt" in capsys.readouterr().out


def test_shards_need_one_salt_and_merge_refuses_two(project_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def shard(i: int, *salt: str) -> int:
        return main(["sweep", "--config", str(project_dir / "gate.yaml"), *ARMS, "--shard",
                     f"{i}/2", "--stage", "1", "--stages", "2", *salt, "--out",
                     str(tmp_path / f"shard{i}")])

    assert shard(1) == 4  # no salt: each shard would draw its own plan
    assert "--plan-salt" in capsys.readouterr().err
    assert shard(1, "--plan-salt", "1a") == 0
    assert shard(2, "--plan-salt", "2b") == 0
    assert manifest(tmp_path / "shard1")["plan_salt"] == "1a"
    assert main(["merge", "--out", str(tmp_path / "run"), str(tmp_path / "shard1"),
                 str(tmp_path / "shard2")]) == 4
    assert "plan_salt" in capsys.readouterr().err
