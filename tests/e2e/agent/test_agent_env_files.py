"""``agent.env``, ``agent.pass_env`` and ``agent.files``, and the Python program's installed
distributions recorded in the manifest (and hashed, so an upgrade invalidates a smoke test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from agent_support import agent_log, make_project, scripted

from gate.cli import main
from gate.project.load import load_project

EASY = ("incident/incident-easy-01-cache-crashed.yaml",)
TASK = "incident-easy-01-cache-crashed"


def test_env_constants_and_passed_names_reach_the_program(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_SETTING", "from-gate")
    monkeypatch.setenv("NOT_PASSED", "secret")
    agent = {**scripted("no-call"), "env": {"OPENAI_AGENTS_DISABLE_TRACING": "1"},
             "pass_env": ["TEAM_SETTING", "UNSET_NAME"]}
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=agent)
    main(["run", "--config", str(cfg), "--model", "mock/expert", "--out", str(tmp_path / "r")])
    env = agent_log(tmp_path / "p", TASK)["env"]
    assert env["OPENAI_AGENTS_DISABLE_TRACING"] == "1"
    assert env["TEAM_SETTING"] == "from-gate"
    assert "UNSET_NAME" not in env
    assert "NOT_PASSED" not in env


@pytest.mark.parametrize(("extra", "message"), [
    ({"env": {"OPENAI_API_KEY": "x"}}, "the trial sets these itself"),
    ({"env": {"GATE_MODEL": "x"}}, "the trial sets these itself"),
    ({"pass_env": ["OPENROUTER_API_KEY"]}, "is a provider's api_key_env"),
    ({"files": ["agents/uv.lock"]}, "agent.files[0]: 'agents/uv.lock' is not a file"),
])
def test_bad_env_or_files_are_refused_by_validate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: dict[str, Any],
        message: str) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY, agent={**scripted("no-call"), **extra})
    assert main(["validate", "--config", str(cfg)]) == 4
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_files_are_hashed_and_a_python_programs_distributions_recorded(tmp_path: Path) -> None:
    (tmp_path / "p" / "agents").mkdir(parents=True)
    lock = tmp_path / "p" / "agents" / "uv.lock"
    lock.write_text("openai-agents==0.1\n")
    agent = {**scripted("no-call"), "files": ["agents/uv.lock"]}
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=agent)
    first = load_project(cfg)
    lock.write_text("openai-agents==0.2\n")
    second = load_project(cfg)
    assert first.hashes["agents/uv.lock"] != second.hashes["agents/uv.lock"]
    listed = second.agent_distributions["agent"]
    assert any(d.startswith("pydantic==") for d in listed)  # what this interpreter has
    assert "agent:python-distributions" in second.hashes
    main(["run", "--config", str(cfg), "--model", "mock/expert", "--out", str(tmp_path / "r")])
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["agent_distributions"] == {"agent": listed}
    assert manifest["files_sha256"]["agent:python-distributions"] == \
        second.hashes["agent:python-distributions"]


def test_a_program_that_is_not_python_records_no_distributions(tmp_path: Path) -> None:
    script = tmp_path / "p" / "agent.sh"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\necho hi\n")
    cfg = make_project(tmp_path / "p", tasks=EASY, agent={"command": ["sh", "agent.sh"]})
    project = load_project(cfg)
    assert project.agent_distributions == {}
    assert "agent.sh" in project.hashes
