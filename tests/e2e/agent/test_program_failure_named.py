"""A program's own failure is named as such (exit code, share of trials, its last stderr line)
before any task is blamed: by `gate validate` (a file the command names is missing), by the smoke
test, in results.json's status reasons and as a failure reason of the regressed-tasks table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from agent_support import make_project, scripted
from builders import trial

from gate.agent.failures import program_failures
from gate.cli import main
from gate.engine.results import failure_reasons
from gate.records import Trial, TrialScores

EASY = ("incident/incident-easy-01-cache-crashed.yaml",
        "orders/orders-easy-01-cancel-pending-order.yaml")


def test_validate_names_a_missing_script_in_the_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY[:1],
                       agent={"command": [sys.executable, "agents/missing.py", "--fast"]})
    assert main(["validate", "--config", str(cfg)]) == 4
    err = capsys.readouterr().err
    assert "gate.yaml:" in err
    assert "agent.command[1]: 'agents/missing.py' is not a file of the repository" in err
    assert "--fast" not in err


def test_validate_accepts_code_after_dash_c_and_existing_scripts(tmp_path: Path) -> None:
    (tmp_path / "p" / "agents").mkdir(parents=True)
    (tmp_path / "p" / "agents" / "there.py").write_text("print('hi')\n")
    cfg = make_project(tmp_path / "p", tasks=EASY[:1],
                       agent={"command": [sys.executable, "agents/there.py", "-c", "a/b.py"]})
    assert main(["validate", "--config", str(cfg)]) == 0


def test_smoke_with_a_missing_script_fails_naming_the_program(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY,
                       agent={"command": [sys.executable, "agent.py"]})
    assert main(["smoke", "--config", str(cfg), "--out", str(tmp_path / "s")]) == 4
    err = capsys.readouterr().err
    assert "'agent.py' is not a file of the repository" in err
    assert "broken task" not in err


@pytest.mark.slow  # end to end: not in the fast loop
def test_smoke_names_a_crashing_program_and_blames_no_task(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=scripted("crash-at-start"))
    assert main(["smoke", "--config", str(cfg), "--out", str(tmp_path / "s")]) == 1
    smoke = json.loads((tmp_path / "s" / "smoke.json").read_text())
    checks = {c["name"]: c for c in smoke["checks"]}
    runs = checks["the agent program runs"]
    assert runs["ok"] is False
    assert runs["detail"] == ("the agent program exited 1 in 2 of 2 trials: "
                              "ModuleNotFoundError: No module named 'agents'")
    expert = checks["expert solves every task"]
    assert "broken task" not in expert["detail"]
    assert "not judged, the agent program failed" in expert["detail"]
    names = [c["name"] for c in smoke["checks"]]
    assert names.index("the agent program runs") < names.index("expert solves every task")


def test_a_run_names_the_program_first_in_its_status_reasons(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=scripted("call-then-exit-3"))
    assert main(["run", "--config", str(cfg), "--model", "mock/expert",
                 "--out", str(tmp_path / "r")]) == 0
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["status_reasons"][0] == (
        "the agent program exited 3 in 2 of 2 trials: boom: the agent fell over")
    assert "the agent program exited 3 in 2 of 2 trials" in (
        tmp_path / "r" / "report.md").read_text()


def _program_trial(i: int, agent: dict | None, ended: str = "agent_exit") -> Trial:  # type: ignore[type-arg]
    return trial("run", f"t{i}", 1, agent=agent, ended=ended, success=False)


def test_timeouts_and_exits_are_counted_apart_over_the_programs_trials() -> None:
    ok = {"kind": "program", "exit_code": 0, "timed_out": False}
    trials = [
        _program_trial(1, {"kind": "program", "exit_code": None, "timed_out": True,
                           "stderr_tail": "step 4\nwaiting for the model\n\n"}, "agent_timeout"),
        _program_trial(2, {"kind": "program", "exit_code": 2, "timed_out": False,
                           "stderr_tail": ""}),
        _program_trial(3, {"kind": "program", "exit_code": None, "timed_out": True,
                           "stderr_tail": "still waiting"}, "agent_timeout"),
        _program_trial(4, ok, "final_answer"),
        _program_trial(5, None, "final_answer"),  # the built-in loop's trial: not counted
    ]
    assert program_failures(trials) == [
        "the agent program timed out in 2 of 4 trials: still waiting",
        "the agent program exited 2 in 1 of 4 trials: (nothing on stderr)",
    ]
    assert program_failures(trials[3:]) == []


@pytest.mark.parametrize("ended", ["agent_exit", "agent_timeout"])
def test_agent_exit_and_timeout_are_failure_reasons(ended: str) -> None:
    assert failure_reasons(TrialScores(ended=ended, success=False))[0] == ended


def test_validate_refuses_two_tasks_with_one_instruction_in_one_environment(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY[:1])
    src = tmp_path / "p" / "tasks" / EASY[0]
    text = src.read_text().replace("id: incident-easy-01-cache-crashed",
                                   "id: incident-easy-01-copy")
    assert text != src.read_text()
    (src.parent / "copy.yaml").write_text(text)
    assert main(["validate", "--config", str(cfg)]) == 4
    err = capsys.readouterr().err
    assert "copy.yaml" in err
    assert "has the same instruction as" in err
