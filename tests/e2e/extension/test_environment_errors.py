"""An exception raised by a team's environment code is the harness's fault: during a run the
trial is an ``environment_error`` (counted apart, excluded from rates and from the decision,
shown in the report); during validation it is exit 4 naming the environment's file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from userrepo import GATE_YAML, build

from gate.cli import main
from gate.rundir.jsonl import read_jsonl

FLAKY = ('if self.seed % 3 == 1 and lamp == "a":\n'
         '            raise RuntimeError("lamp a blew a fuse")')
ALWAYS = 'raise ValueError("no power in the building")'


def line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def test_exception_during_reference_replay_is_exit_4_with_the_users_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    repo = tmp_path / "repo"
    build(repo, raise_hook=ALWAYS)
    monkeypatch.chdir(repo)
    assert main(["validate"]) == 4
    err = capsys.readouterr().err
    line = line_of(repo / "environments" / "lamps.py", "no power")
    assert (f"environments/lamps.py:{line}: environment 'lamps' raised ValueError in call: "
            "no power in the building") in err
    assert "replaying the reference trajectory of fixtures/lamps/" in err
    assert "Traceback" not in err
    assert main(["smoke", "--out", "s"]) == 4


@pytest.mark.slow  # end to end: not in the fast loop
def test_environment_errors_are_counted_apart_and_excluded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    repo = tmp_path / "repo"  # the rounds schedule: a pair is (task, round)
    build(repo, raise_hook=FLAKY, gate_yaml=GATE_YAML.replace(
        "statistics:\n", "statistics:\n  schedule: rounds\n"))
    monkeypatch.chdir(repo)
    assert main(["validate"]) == 0  # the reference replay uses seed 0: no fuse blows
    code = main(["sweep", "--candidate", "mock/expert", "--baseline", "mock/expert",
                 "--out", "r", "--max-rounds", "12"])
    trials = read_jsonl(repo / "r" / "trials.jsonl")
    broken = [t for t in trials if t["status"] == "environment_error"]
    assert broken, "the seeds of this run never blow the fuse: pick another seed"
    assert {t["task"] for t in broken} == {"lamps-all"}
    line = line_of(repo / "environments" / "lamps.py", "blew a fuse")
    assert broken[0]["environment_error"] == {
        "environment": "lamps", "phase": "call", "type": "RuntimeError",
        "message": "lamp a blew a fuse", "file": "environments/lamps.py", "line": line}
    assert broken[0]["success"] is None  # never scored: neither a success nor a failure

    results = json.loads((repo / "r" / "results.json").read_text())
    for name, arm in results["arms"].items():
        mine = [t for t in trials if t["arm"] == name]
        assert arm["environment_errors"]["total"] == sum(
            t["status"] == "environment_error" for t in mine)
        assert arm["trials"] == sum(t["status"] == "scored" for t in mine)
        assert arm["success_rate"] == 1.0  # the failures are not the model's
    assert results["scope"]["counts"]["environment_error"] == len(broken)
    states = {c["state"] for c in results["scope"]["cells_not_done"]}
    assert "environment_error" in states
    # the decision saw only pairs where both sides were scored
    rounds = results["decision"]["rounds"]
    by_id = {t["trial_id"]: t for t in trials}
    pairs = sum(1 for t in trials if t["arm"] == "candidate" and t["round"] <= rounds
                and t["status"] == "scored"
                and by_id[t["trial_id"].replace("candidate/", "baseline/", 1)]["status"]
                == "scored")
    assert results["decision"]["pairs"] == pairs
    assert code in (0, 3)

    report = (repo / "r" / "report.md").read_text()
    assert "Environment errors (candidate)" in report
    assert f"`environments/lamps.py`:{line}" in report
    assert "lost to environment errors" in report
    assert main(["verify", "--run", "r"]) == 0
    assert "environment_error in candidate/lamps-all/" in capsys.readouterr().err


def test_smoke_names_the_environment_error_of_the_expert_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from gate.engine.runner import trial_seed

    repo = tmp_path / "repo"
    build(repo, raise_hook=FLAKY)
    seed = next(s for s in range(100) if trial_seed(s, "lamps-all", 1) % 3 == 1)
    monkeypatch.chdir(repo)
    assert main(["smoke", "--out", "s", "--seed", str(seed)]) == 1
    line = line_of(repo / "environments" / "lamps.py", "blew a fuse")
    assert (f"lamps-all (environment error: RuntimeError in call at environments/lamps.py:{line})"
            in capsys.readouterr().out)


def test_check_fixture_raising_is_exit_4_with_the_users_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    repo = tmp_path / "repo"
    build(repo)
    env = repo / "environments" / "lamps.py"
    env.write_text(env.read_text().replace('lamps = fixture.initial_state.get("lamps")',
                                           'lamps = fixture.initial_state["bulbs"]'))
    monkeypatch.chdir(repo)
    assert main(["validate"]) == 4
    line = line_of(env, '["bulbs"]')
    err = capsys.readouterr().err
    assert (f"environments/lamps.py:{line}: environment 'lamps' raised KeyError in "
            "check_fixture: 'bulbs' (checking fixtures/lamps/") in err
