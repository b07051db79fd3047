"""``agent.mode: persistent``: the example agent is started once per arm and solves every trial
from JSON lines on stdin; per-trial endpoints, tokens and accounting stay per trial; a program
that dies mid-trial fails that trial only and is started again for the next."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from agent_support import EXAMPLE, PROGRAMS, make_project

from gate.cli import main
from gate.rundir.audit import attempts
from gate.rundir.jsonl import read_jsonl


def _persistent(script: Path, *args: str) -> dict:  # type: ignore[type-arg]
    return {"command": [sys.executable, str(script), *args], "timeout_s": 60,
            "mode": "persistent"}


@pytest.mark.slow  # end to end: not in the fast loop
def test_example_agent_in_persistent_mode_solves_every_task(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", agent=_persistent(EXAMPLE), run={"concurrency": 4})
    out = tmp_path / "r"
    assert main(["run", "--config", str(cfg), "--model", "mock/expert", "--out", str(out)]) == 0
    trials = read_jsonl(out / "trials.jsonl")
    assert len(trials) == 3
    assert all(t["success"] and t["agent"]["exit_code"] == 0 for t in trials), trials
    audit = attempts(read_jsonl(out / "audit.jsonl"))
    assert len(audit) == sum(t["agent"]["model_calls"] for t in trials)
    assert sorted(a["response_id"] for a in audit) == sorted(
        i for t in trials for i in t["response_ids"])
    assert all(t["agent"]["final_answer_chars"] > 0 for t in trials)


@pytest.mark.slow  # end to end: not in the fast loop
def test_one_process_per_slot_and_a_crash_fails_only_its_trial(tmp_path: Path) -> None:
    program = PROGRAMS / "persistent_probe.py"
    cfg = make_project(tmp_path / "p", agent=_persistent(program), run={"concurrency": 1})
    out = tmp_path / "r"
    main(["run", "--config", str(cfg), "--model", "mock/expert", "--out", str(out)])
    trials = {t["task"]: t for t in read_jsonl(out / "trials.jsonl")}
    pids = json.loads((tmp_path / "p" / "agent-log" / "pids.json").read_text())
    crashed = "incident-hard-02-retry-storm-two-faults"  # the probe dies on this task
    assert trials[crashed]["ended"] == "agent_exit"
    assert trials[crashed]["agent"]["exit_code"] == 4
    others = [t for name, t in trials.items() if name != crashed]
    assert all(t["ended"] == "final_answer" for t in others)
    # three trials, one at a time (concurrency 1): the process that crashed was replaced once
    assert len(set(pids.values())) == 2
    tokens = [t for t in json.loads((tmp_path / "p" / "agent-log" / "tokens.json").read_text())]
    assert len(set(tokens)) == 3  # a fresh token per trial
