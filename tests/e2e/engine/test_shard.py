"""Sharded sweeps: `gate sweep --shard I/N --stage S` and `gate merge` decide exactly as one
process does with the same seed (simulated provider), and the merged run verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import results_of

from gate.cli import main
from gate.engine.plan import plan_units
from gate.engine.shard import shard_units, stage_units
from gate.rundir.jsonl import read_jsonl


def run_sharded(project_dir: Path, tmp: Path, arms: list[str], *, shards: int, stages: int,
                seed: str) -> tuple[int, Path, list[int]]:
    """Every stage as CI runs it: N shard jobs, then the decision job; stops when decided."""
    run_dir, codes = tmp / "run", []
    for stage in range(1, stages + 1):
        dirs = []
        for i in range(1, shards + 1):
            d = tmp / f"stage{stage}-shard{i}"
            code = main(["sweep", "--config", str(project_dir / "gate.yaml"), *arms,
                         "--seed", seed, "--plan-salt", SALT, "--shard", f"{i}/{shards}",
                         "--stage", str(stage),
                         "--stages", str(stages), "--out", str(d)])
            assert code == 0
            dirs.append(str(d))
        code = main(["merge", "--out", str(run_dir), *dirs])
        codes.append(code)
        if code != 3 or json.loads((run_dir / "stages.json").read_text())["next_stage"] is None:
            return code, run_dir, codes
    return code, run_dir, codes


SALT = "5a17"  # every shard of a sweep draws the same plan (the workflow's plan job draws it)
DECISION_KEYS = ("verdict", "pairs", "e_reject", "e_accept", "decided_round", "rounds_log")


@pytest.mark.parametrize(("candidate", "seed", "shards", "stages"), [
    ("mock/expert@0.8", "1", 3, 4),   # a regression, found in an early stage
    ("mock/expert", "2", 2, 3),       # no regression
])
def test_sharded_sweep_decides_as_one_process(project_dir: Path, tmp_path: Path,
                                              candidate: str, seed: str, shards: int,
                                              stages: int) -> None:
    arms = ["--candidate", candidate, "--baseline", "mock/expert"]
    single = tmp_path / "single"
    one_code = main(["sweep", "--config", str(project_dir / "gate.yaml"), *arms, "--seed", seed,
                     "--plan-salt", SALT, "--out", str(single)])
    code, run_dir, codes = run_sharded(project_dir, tmp_path, arms, shards=shards,
                                       stages=stages, seed=seed)
    want, got = results_of(single), results_of(run_dir)
    assert code == one_code
    assert got["verdict"] == want["verdict"]
    for key in DECISION_KEYS:
        assert got["decision"][key] == want["decision"][key], key
    # SLOs are judged on the decision's pairs: the same statuses and bounds (the p95 latency
    # itself is wall-clock time of the loopback server, so it differs between the two runs)
    assert got["slos"]["breaches"] == want["slos"]["breaches"]
    for a, b in zip(got["slos"]["checks"], want["slos"]["checks"], strict=True):
        assert (a["slo"], a["status"], a["bounds"]) == (b["slo"], b["status"], b["bounds"])
        if a["slo"] != "p95_latency_s":
            assert a["value"] == pytest.approx(b["value"])
    assert json.loads((run_dir / "stages.json").read_text())["run"][-1]["stage"] == len(codes)
    assert main(["verify", "--run", str(run_dir)]) == 0


def test_undecided_stage_names_the_next_one(project_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    d = tmp_path / "shard"
    assert main(["sweep", "--config", str(project_dir / "gate.yaml"), "--candidate",
                 "mock/expert", "--baseline", "mock/expert", "--shard", "1/1", "--stage", "1",
                 "--stages", "16", "--plan-salt", SALT, "--out", str(d)]) == 0
    code = main(["merge", "--out", str(tmp_path / "run"), str(d)])
    r = results_of(tmp_path / "run")
    assert code == 3
    assert r["verdict"] == "inconclusive"
    assert json.loads((tmp_path / "run" / "stages.json").read_text())["next_stage"] == 2
    lines = output.read_text().splitlines()
    assert "next_stage=2" in lines
    assert any(line.startswith("stage_budget_usd=") and line != "stage_budget_usd="
               for line in lines)
    assert main(["verify", "--run", str(tmp_path / "run")]) == 0
    report = (tmp_path / "run" / "report.md").read_text()
    assert "**Stages (sharded sweep)**" in report
    assert "stage 1 of 16: 1 shards" in report
    assert "stage 2 is needed" in report
    # the same shards merged again: refused, the checkpoint is not counted twice
    assert main(["merge", "--out", str(tmp_path / "run"), str(d)]) == 4


def test_a_shard_runs_its_share_and_never_decides(project_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "shard"
    # a regression found in the first pairs: a shard still runs every unit it was dealt
    assert main(["sweep", "--config", str(project_dir / "gate.yaml"), "--candidate",
                 "mock/expert@0.5", "--baseline", "mock/expert", "--shard", "2/3",
                 "--stage", "1", "--stages", "2", "--plan-salt", SALT, "--out", str(d)]) == 0
    info = json.loads((d / "shard.json").read_text())
    assert len(read_jsonl(d / "trials.jsonl")) == 2 * info["units"] > 0
    assert not (d / "results.json").exists()


def test_the_plan_is_split_without_overlap_or_gap() -> None:
    units = plan_units("iid", ["a", "b", "c"], 8, "7", 4)
    stages = [stage_units(units, s, 3) for s in (1, 2, 3)]
    assert [u for s in stages for u in s] == units
    assert [len(s) // 4 for s in stages] == [1, 2, 3]  # 6 batches: doubling, at least one
    many = [stage_units(units, s, 10) for s in range(1, 11)]
    assert [u for s in many for u in s] == units
    for stage in stages:
        shards = [shard_units(stage, i, 4) for i in (1, 2, 3, 4)]
        assert sorted(u.index for s in shards for u in s) == [u.index for u in stage]


def test_missing_shard_is_refused(project_dir: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "shard1"
    assert main(["sweep", "--config", str(project_dir / "gate.yaml"), "--candidate",
                 "mock/expert", "--baseline", "mock/expert", "--shard", "1/2", "--stage", "1",
                 "--stages", "2", "--plan-salt", SALT, "--out", str(d)]) == 0
    assert main(["merge", "--out", str(tmp_path / "run"), str(d)]) == 4
    assert "missing [2]" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--shard", "3/2", "--stage", "1"],
                                   ["--shard", "x", "--stage", "1"],
                                   ["--shard", "1/2"],
                                   ["--shard", "1/2", "--stage", "3", "--stages", "2"],
                                   ["--stage", "1"]])
def test_bad_shard_flags_exit_4(project_dir: Path, tmp_path: Path, flags: list[str],
                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sweep", "--config", str(project_dir / "gate.yaml"), "--candidate",
                 "mock/expert", "--out", str(tmp_path / "o"), *flags])
    assert code == 4
    assert "Traceback" not in capsys.readouterr().err


def test_a_shard_reuses_cached_baseline_trials_like_one_process(project_dir: Path,
                                                                  tmp_path: Path) -> None:
    cfg = str(project_dir / "gate.yaml")
    cache = tmp_path / "cache" / "run1"
    arms = ["--candidate", "mock/expert@0.99", "--baseline", "mock/expert"]
    assert main(["sweep", "--config", cfg, *arms, "--max-rounds", "1", "--plan-salt", SALT,
                 "--out", str(cache)]) == 3
    d = tmp_path / "shard"
    assert main(["sweep", "--config", cfg, "--candidate", "mock/expert@0.9", "--baseline",
                 "mock/expert", "--max-rounds", "1", "--plan-salt", "77", "--shard", "1/1",
                 "--stage", "1", "--stages", "1", "--reuse-from", str(tmp_path / "cache"),
                 "--out", str(d)]) == 0
    key = json.loads((cache / "manifest.json").read_text())["baseline_key"]
    assert json.loads((d / "manifest.json").read_text())["baseline_key"] == key
    baseline = [t for t in read_jsonl(d / "trials.jsonl") if t["arm"] == "baseline"]
    reused = [t for t in baseline if t["reused_from"] is not None]
    assert len(reused) > len(baseline) // 4  # every (task, occurrence) the cache holds
    code = main(["merge", "--out", str(tmp_path / "run"), str(d)])
    assert code in (0, 1, 3)
    r = results_of(tmp_path / "run")
    assert r["reuse"]["trials"] == len(reused)
    assert main(["verify", "--run", str(tmp_path / "run")]) == 0
