"""Real agent frameworks behind ``agent: {command: [...]}``, each through its own MCP integration,
on the simulated expert: the OpenAI Agents SDK, Pydantic AI and LangGraph, over Chat Completions
and the Responses API, with structured output, parallel tool calls, a required tool choice,
prefixed tools and a templated instruction. Each solves every task, and the audit has exactly one
line per model call the framework made (counted by the program's own HTTP client).

The frameworks live in their own virtual environment, built here once from
``requirements/frameworks.lock`` (pinned, with hashes) at ``.venv-frameworks`` (or
``$GATE_FRAMEWORKS_VENV``); building it needs the package index. The programs are in
tests/support/frameworks/ and in docs/agents.md."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from agent_support import REPO, make_project
from paths import FRAMEWORKS

from gate.cli import main
from gate.rundir.audit import attempts
from gate.rundir.jsonl import read_jsonl

# The frameworks and everything they need, pinned with hashes (`make lock` refreshes it).
FRAMEWORKS_LOCK = REPO / "requirements" / "frameworks.lock"
PROGRAMS = FRAMEWORKS
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def framework_python() -> Path:
    venv = Path(os.environ.get("GATE_FRAMEWORKS_VENV", REPO / ".venv-frameworks"))
    python, stamp = venv / "bin" / "python", venv / "gate-lock.sha256"
    lock = hashlib.sha256(FRAMEWORKS_LOCK.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == lock:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--require-hashes", "-r", str(FRAMEWORKS_LOCK)], check=True)
    stamp.write_text(lock)
    return python


CASES = [
    ("agents_sdk_agent.py", "--api", "chat"),
    ("agents_sdk_agent.py", "--api", "responses"),
    ("agents_sdk_agent.py", "--api", "responses", "--structured", "--template"),
    ("agents_sdk_agent.py", "--api", "chat", "--structured", "--parallel"),
    ("agents_sdk_agent.py", "--api", "chat", "--required"),
    ("pydantic_ai_agent.py", "--api", "chat", "--template"),
    ("pydantic_ai_agent.py", "--api", "responses", "--parallel"),
    ("pydantic_ai_agent.py", "--api", "chat", "--structured", "--prefix", "gate_"),
    ("pydantic_ai_agent.py", "--api", "responses", "--structured"),
    ("langgraph_agent.py", "--api", "chat", "--prefix", "gate_", "--template"),
    ("langgraph_agent.py", "--api", "responses", "--structured"),
    ("langgraph_agent.py", "--api", "chat", "--parallel", "--structured"),
]


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c) for c in CASES])
def test_framework_solves_every_task_and_each_model_call_is_audited(
        tmp_path: Path, framework_python: Path, case: tuple[str, ...]) -> None:
    script, *flags = case
    agent = {"command": [str(framework_python), str(PROGRAMS / script), *flags],
             "timeout_s": 240, "env": {"OPENAI_AGENTS_DISABLE_TRACING": "1"}}
    cfg = make_project(tmp_path / "p", agent=agent)
    out = tmp_path / "r"
    assert main(["run", "--config", str(cfg), "--model", "mock/expert", "--out", str(out)]) == 0
    trials = read_jsonl(out / "trials.jsonl")
    assert len(trials) == 3
    assert all(t["success"] and t["agent"]["exit_code"] == 0 for t in trials), [
        (t["task"], t["ended"], t["agent"].get("stderr_tail", "")[-500:]) for t in trials]
    assert [t["agent"]["rejected_requests"] for t in trials] == [{}, {}, {}]
    logs = {t["task"]: json.loads((tmp_path / "p" / "agent-log" / f"{t['task']}.json")
                                  .read_text()) for t in trials}
    audit = attempts(read_jsonl(out / "audit.jsonl"))
    assert len(audit) == sum(t["agent"]["model_calls"] for t in trials) == sum(
        log["model_calls"] for log in logs.values())
    if "--structured" in flags:
        for log in logs.values():
            assert set(log["answer"]) == {"summary", "actions_taken", "resolved"}
    if "--parallel" in flags:  # some model call asked for more than one tool at once
        per_step = Counter((t["task"], c["step"]) for t in trials for c in t["calls"])
        assert max(per_step.values()) >= 2


def _doc_programs() -> dict[str, str]:
    """The Python programs of docs/agents.md's "Frameworks" section, by their heading."""
    text = (REPO / "docs" / "agents.md").read_text()
    section = text.split("## Frameworks", 1)[1].split("\n## ", 1)[0]
    programs = {}
    for part in section.split("\n### ")[1:]:
        heading, _, body = part.partition("\n")
        programs[heading.strip()] = body.split("```python\n", 1)[1].split("```", 1)[0]
    return programs


def test_the_docs_have_a_program_per_framework() -> None:
    assert sorted(_doc_programs()) == ["LangGraph", "OpenAI Agents SDK", "Pydantic AI"]


@pytest.mark.parametrize("framework", ["LangGraph", "OpenAI Agents SDK", "Pydantic AI"])
def test_each_documented_program_solves_every_task(
        tmp_path: Path, framework_python: Path, framework: str) -> None:
    script = tmp_path / "agent.py"
    script.write_text(_doc_programs()[framework])
    agent = {"command": [str(framework_python), str(script)], "timeout_s": 240,
             "env": {"OPENAI_AGENTS_DISABLE_TRACING": "1"}}
    cfg = make_project(tmp_path / "p", agent=agent)
    out = tmp_path / "r"
    assert main(["run", "--config", str(cfg), "--model", "mock/expert", "--out", str(out)]) == 0
    trials = read_jsonl(out / "trials.jsonl")
    assert len(trials) == 3
    assert all(t["success"] for t in trials), [t["agent"] for t in trials]
    assert len(attempts(read_jsonl(out / "audit.jsonl"))) == sum(
        t["agent"]["model_calls"] for t in trials)
