"""`--task`/`--env` run a subset of the suite, which says so everywhere; `--smoke DIR` is checked
whatever the provider (a missing, failed, stale or partial smoke is refused on simulated arms)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.cli import main
from gate.records import Trial
from gate.rundir.jsonl import read_jsonl

ORDERS_EASY = "orders-easy-*"


def _gate(capsys: pytest.CaptureFixture[str], project_dir: Path, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main([args[0], "--config", str(project_dir / "gate.yaml"), *args[1:]])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _suite(project_dir: Path, pattern: str = "*") -> list[str]:
    return sorted(p.stem for p in (project_dir / "tasks").rglob(f"{pattern}.yaml"))


def test_run_with_task_globs_runs_only_those_and_records_the_subset(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    wanted = _suite(project_dir, ORDERS_EASY)
    assert 1 < len(wanted) < len(_suite(project_dir))
    out = tmp_path / "run"
    code, text = _gate(capsys, project_dir, "run", "--model", "mock/expert", "--rounds", "1",
                       "--out", str(out), "--task", ORDERS_EASY)
    assert code == 0, text
    trials = read_jsonl(out / "trials.jsonl", Trial)
    assert sorted({t.task for t in trials}) == wanted
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["scope"]["tasks"]) == wanted
    assert sorted(manifest["subset"]["tasks"]) == wanted
    assert manifest["subset"]["suite_tasks"] == len(_suite(project_dir))
    results = json.loads((out / "results.json").read_text())
    assert results["subset"]["task_patterns"] == [ORDERS_EASY]
    assert f"subset: {len(wanted)} of {len(_suite(project_dir))} tasks" in text
    assert "subset" in (out / "report.md").read_text()


def test_smoke_with_env_covers_that_environment_only(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, text = _gate(capsys, project_dir, "smoke", "--out", str(tmp_path / "s"),
                       "--env", "orders")
    assert code == 0, text
    smoke = json.loads((tmp_path / "s" / "smoke.json").read_text())
    assert sorted(t["task"] for t in smoke["tasks"]) == _suite(project_dir, "orders-*")
    assert smoke["subset"]["environments"] == ["orders"]


@pytest.mark.parametrize(("flag", "value"), [("--task", "ordrs-easy-*"), ("--env", "order")])
def test_a_selection_that_matches_nothing_is_refused_naming_the_flag(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str,
) -> None:
    code, text = _gate(capsys, project_dir, "run", "--model", "mock/expert", "--out",
                       str(tmp_path / "r"), flag, value)
    assert code == 4
    assert f"{flag}: '{value}' selects no task" in text
    assert "closest: " in text
    assert not (tmp_path / "r" / "trials.jsonl").exists()


def test_subset_sweep_is_vouched_for_by_a_subset_smoke_but_not_a_full_one_by_it(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    smoke = tmp_path / "smoke"
    code, text = _gate(capsys, project_dir, "smoke", "--out", str(smoke), "--env", "orders")
    assert code == 0, text
    sweep = ("sweep", "--candidate", "mock/expert@0.8", "--baseline", "mock/expert",
             "--smoke", str(smoke), "--max-rounds", "2")
    code, text = _gate(capsys, project_dir, *sweep, "--out", str(tmp_path / "sub"),
                       "--env", "orders")
    assert code in (0, 1, 3), text  # decided or not: it ran
    results = json.loads((tmp_path / "sub" / "results.json").read_text())
    assert results["subset"]["environments"] == ["orders"]
    assert {t["task"] for t in results["tasks"]} <= set(_suite(project_dir, "orders-*"))
    assert "(subset: " in (tmp_path / "sub" / "report.md").read_text()
    # the same smoke does not vouch for the whole suite: refused before any run directory
    code, text = _gate(capsys, project_dir, *sweep, "--out", str(tmp_path / "all"))
    assert code == 4
    assert "smoke.json" in text
    assert "did not cover" in text
    assert not (tmp_path / "all").exists()


def _write_smoke(capsys: pytest.CaptureFixture[str], project_dir: Path, smoke: Path,
                 case: str) -> None:
    if case == "missing":
        return
    if case == "empty":
        smoke.mkdir()
        return
    code, _ = _gate(capsys, project_dir, "smoke", "--out", str(smoke))
    assert code == 0
    if case == "failed":
        data = json.loads((smoke / "smoke.json").read_text())
        (smoke / "smoke.json").write_text(json.dumps({**data, "ok": False}))
    if case == "stale":
        task = sorted((project_dir / "tasks").rglob("*.yaml"))[0]
        task.write_text(task.read_text() + "\n# edited after the smoke test\n")


@pytest.mark.parametrize("case", ["missing", "empty", "failed", "stale"])
def test_smoke_dir_is_checked_on_simulated_arms_too(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
) -> None:
    smoke = tmp_path / "smoke"
    _write_smoke(capsys, project_dir, smoke, case)
    code, text = _gate(capsys, project_dir, "sweep", "--candidate", "mock/expert@0.8",
                       "--baseline", "mock/expert", "--smoke", str(smoke),
                       "--out", str(tmp_path / "r"))
    assert code == 4, text
    assert f"{smoke / 'smoke.json'}: " in text
    assert not (tmp_path / "r").exists()


def test_a_passing_smoke_of_the_same_files_lets_a_simulated_sweep_run(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    smoke = tmp_path / "smoke"
    _write_smoke(capsys, project_dir, smoke, "passing")
    code, text = _gate(capsys, project_dir, "sweep", "--candidate", "mock/expert@0.8",
                       "--baseline", "mock/expert", "--smoke", str(smoke),
                       "--out", str(tmp_path / "r"), "--task", "orders-*")
    assert code == 1, text  # the regression is found on the subset
    assert (tmp_path / "r" / "results.json").exists()
