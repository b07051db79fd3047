"""``gate validate`` on a provider declaring unsupported a chat-completions field gate's own
requests cannot do without: exit 4, naming gate.yaml and the line of the declared field. A field
gate can leave out (the seed) is accepted, and a run records it in the manifest."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from agent_support import EXAMPLE, TASKS, make_project, program
from cli_helpers import validate

from gate.cli import main

DECLARED = "    type: mock\n"


def declare(project: Path, *fields: str, agent: str = "") -> int:
    """Declare ``fields`` unsupported on the mock provider; the line of the first one."""
    path = project / "gate.yaml"
    text = path.read_text()
    assert DECLARED in text
    block = "".join(f"        - {f}\n" for f in fields)
    text = text.replace(DECLARED, DECLARED + "    unsupported_fields:\n"
                        "      chat_completions:\n" + block, 1)
    path.write_text(text + agent)
    before = text[:text.index(block)]
    return before.count("\n") + 1


def test_tools_declared_unsupported_is_refused_with_file_and_line(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = declare(project_dir, "seed", "tools")
    code, err = validate(capsys, project_dir)
    assert code == 4
    assert "Traceback" not in err
    where = "providers.mock.unsupported_fields.chat_completions[1]"
    assert re.search(rf"gate\.yaml:{line + 1}: {re.escape(where)}: 'tools' cannot be "
                     r"unsupported: the built-in loop", err), err
    assert "'seed'" not in err  # a field gate can leave out is no problem


def test_messages_are_refused_even_when_a_program_runs_every_task(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project_dir / "agent.py").write_text("print('done')\n")
    program = f"agent:\n  command: [{json.dumps(sys.executable)}, agent.py]\n"
    line = declare(project_dir, "messages", "tools", agent=program)
    code, err = validate(capsys, project_dir)
    assert code == 4
    assert re.search(rf"gate\.yaml:{line}: \S+\[0\]: 'messages' cannot be unsupported", err), err
    assert "'tools'" not in err  # no task runs on the built-in loop: the program's to send


def test_a_run_leaves_out_the_declared_seed_and_its_manifest_says_so(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project_dir, "seed", "temperature")
    assert validate(capsys, project_dir)[0] == 0
    out = tmp_path / "run"
    code = main(["run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/expert",
                 "--rounds", "1", "--task", "incident-easy-*", "--out", str(out)])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["withheld_fields"] == {"mock": ["seed", "temperature"]}
    trials = [json.loads(t) for t in (out / "trials.jsonl").read_text().splitlines()]
    assert trials
    assert all(t["status"] == "scored" and t["success"] for t in trials)


@pytest.mark.slow  # an agent program's whole run
def test_a_programs_calls_without_the_seed_are_counted_in_its_trials(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=TASKS[:1], agent=program(str(EXAMPLE)),
                       mock={"unsupported_fields": {"chat_completions": ["seed"]}})
    out = tmp_path / "run"
    code = main(["run", "--config", str(cfg), "--model", "mock/expert", "--out", str(out)])
    assert code == 0
    trials = [json.loads(t) for t in (out / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 1
    assert all(t["success"] for t in trials)
    assert all(t["agent"]["unseeded_calls"] == t["agent"]["model_calls"] > 0 for t in trials)
