"""How a program's trial ends when the program misbehaves, the provider fails or the run halts;
and what the program is given (and not given)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from agent_support import agent_log, alive, make_project, port_of, port_open, scripted

from gate.cli import main
from gate.rundir.audit import attempts
from gate.rundir.jsonl import read_jsonl

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it

EASY = ("incident/incident-easy-01-cache-crashed.yaml",)
TASK = "incident-easy-01-cache-crashed"


def run(cfg: Path, out: Path, model: str = "mock/expert") -> int:
    return main(["run", "--config", str(cfg), "--model", model, "--out", str(out)])


def results(out: Path) -> dict:  # type: ignore[type-arg]
    name = "results.json" if (out / "results.json").exists() else "PARTIAL-RESULTS.json"
    return json.loads((out / name).read_text())  # type: ignore[no-any-return]


def test_non_zero_exit_is_the_agents_failure_with_its_stderr(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=scripted("call-then-exit-3"))
    assert run(cfg, tmp_path / "r") == 0
    (trial,) = read_jsonl(tmp_path / "r" / "trials.jsonl")
    assert trial["status"] == "scored"
    assert trial["success"] is False
    assert trial["reward"] == 0.0
    assert trial["ended"] == "agent_exit"
    assert trial["agent"]["exit_code"] == 3
    assert "boom: the agent fell over" in trial["agent"]["stderr_tail"]
    assert results(tmp_path / "r")["arms"]["run"]["trials"] == 1


def test_timeout_is_a_failure_and_the_whole_process_group_is_killed(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=scripted("call-then-hang", 3))
    assert run(cfg, tmp_path / "r") == 0
    (trial,) = read_jsonl(tmp_path / "r" / "trials.jsonl")
    assert trial["status"] == "scored"
    assert trial["success"] is False
    assert trial["ended"] == "agent_timeout"
    assert trial["agent"]["timed_out"] is True
    seen = agent_log(tmp_path / "p", TASK)
    assert not alive(seen["pid"])
    assert not alive(seen["grandchild"])
    assert not port_open(port_of(seen["env"]["OPENAI_BASE_URL"]))


def test_a_program_that_never_calls_the_endpoint_is_not_scored(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=scripted("no-call"))
    assert run(cfg, tmp_path / "r") == 3  # nothing measured: inconclusive
    (trial,) = read_jsonl(tmp_path / "r" / "trials.jsonl")
    assert trial["status"] == "no_model_call"
    assert trial["success"] is None  # not scored: no verdict (every field is written)
    r = results(tmp_path / "r")
    arm = r["arms"]["run"]
    assert arm["trials"] == 0
    assert arm["trials_not_scored"] == {"no_model_call": 1}
    assert r["scope"]["counts"]["not_scored"] == 1
    assert r["status"] == "inconclusive"
    assert "1 not scored" in (tmp_path / "r" / "report.md").read_text()


def test_wrong_token_and_wrong_model_are_refused_and_not_sent(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=scripted("probe"))
    run(cfg, tmp_path / "r")
    assert agent_log(tmp_path / "p", TASK)["statuses"] == [401, 404, 200]
    (trial,) = read_jsonl(tmp_path / "r" / "trials.jsonl")
    assert trial["agent"]["rejected_requests"] == {"auth": 1, "model": 1}
    assert len(attempts(read_jsonl(tmp_path / "r" / "audit.jsonl"))) == 1


def test_the_program_gets_its_trial_and_no_provider_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-must-not-leak")
    monkeypatch.setenv("SOME_OTHER_SECRET", "also-not")
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=scripted("no-call"))
    run(cfg, tmp_path / "r")
    seen = agent_log(tmp_path / "p", TASK)
    env = seen["env"]
    assert "sk-or-v1-must-not-leak" not in json.dumps(env)
    assert "SOME_OTHER_SECRET" not in env
    assert env["GATE_MODEL"] == "mock/expert"
    assert env["GATE_MODEL_ALIAS"] == "mock--expert"
    assert env["GATE_TASK_ID"] == TASK
    assert env["OPENAI_BASE_URL"].startswith("http://127.0.0.1:")
    assert env["OPENAI_BASE_URL"].endswith("/v1")
    assert env["GATE_MCP_URL"].startswith("http://127.0.0.1:")
    assert len(env["OPENAI_API_KEY"]) >= 32
    assert Path(seen["cwd"]).resolve() == (tmp_path / "p").resolve()
    assert env["GATE_INSTRUCTION"].startswith("Alert CacheDown fired")
    assert not Path(env["GATE_SYSTEM_PROMPT_FILE"]).exists()  # removed with the trial
    assert set(env) - {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
                       "PYTHONPATH", "VIRTUAL_ENV", "SSL_CERT_FILE", "SSL_CERT_DIR",
                       "OPENAI_BASE_URL", "OPENAI_API_KEY", "GATE_MODEL", "GATE_MODEL_ALIAS",
                       "GATE_MCP_URL",
                       "GATE_TASK_ID", "GATE_INSTRUCTION", "GATE_SYSTEM_PROMPT_FILE",
                       } == set()


def test_provider_failure_after_retries_loses_the_trial_and_ends_the_program(
        tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=scripted("call-then-hang", 120),
                       mock={"faults": {"rate": 1.0, "kinds": ["500"]}})
    assert run(cfg, tmp_path / "r") == 3
    (trial,) = read_jsonl(tmp_path / "r" / "trials.jsonl")
    assert trial["status"] == "provider_error"
    assert trial["provider_error"]["kind"] == "server_error"
    seen = agent_log(tmp_path / "p", TASK)
    assert not alive(seen["pid"])
    assert not alive(seen["grandchild"]) if "grandchild" in seen else True
    audit = attempts(read_jsonl(tmp_path / "r" / "audit.jsonl"))
    assert [a["outcome"] for a in audit] == ["server_error"] * 5  # the provider's retries


def test_payment_required_halts_the_run_and_ends_the_program(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=scripted("call-then-hang", 120),
                       mock={"faults": {"payment_required_after": 0}})
    assert run(cfg, tmp_path / "r") == 2
    assert results(tmp_path / "r")["status"] == "halted"
    seen = agent_log(tmp_path / "p", TASK)
    assert not alive(seen["pid"])


def test_step_limit_ends_a_program_that_never_stops(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=scripted("loop", 120))
    assert run(cfg, tmp_path / "r", model="mock/looper") == 0
    (trial,) = read_jsonl(tmp_path / "r" / "trials.jsonl")
    assert trial["ended"] == "step_limit"
    assert trial["steps"] == trial["agent"]["model_calls"]
    limit = 12
    task = (tmp_path / "p" / "tasks" / EASY[0]).read_text()
    limit = int(next(line.split(":")[1] for line in task.splitlines()
                     if line.startswith("step_limit")))
    assert trial["steps"] == limit
    assert len(attempts(read_jsonl(tmp_path / "r" / "audit.jsonl"))) == limit


def test_an_environment_may_override_the_agent(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=(EASY[0],
                       "orders/orders-easy-01-cancel-pending-order.yaml"),
                       overrides={"orders": scripted("no-call")})
    run(cfg, tmp_path / "r")
    by_env = {t["environment"]: t for t in read_jsonl(tmp_path / "r" / "trials.jsonl")}
    assert by_env["incident"]["agent"] is None  # the built-in loop
    assert by_env["incident"]["status"] == "scored"
    assert by_env["orders"]["status"] == "no_model_call"


@pytest.mark.parametrize(("override", "agent", "message"), [
    ({"tickets": "builtin"}, None, "agent_overrides: unknown environment 'tickets'"),
    (None, {"command": ["no-such-program-anywhere"]}, "agent.command: 'no-such-program"),
    (None, {"command": ["bin/agent.py"], "timeout_s": 0}, "timeout_s"),
])
def test_bad_agent_configuration_is_exit_4_naming_gate_yaml(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], override: dict | None,  # type: ignore[type-arg]
        agent: dict | None, message: str) -> None:  # type: ignore[type-arg]
    cfg = make_project(tmp_path / "p", tasks=EASY, agent=agent, overrides=override)
    os.chdir(tmp_path)
    assert main(["validate", "--config", str(cfg)]) == 4
    err = capsys.readouterr().err
    assert "gate.yaml:" in err
    assert message in err


def test_a_halt_in_one_trial_ends_the_programs_of_the_others(tmp_path: Path) -> None:
    tasks = (EASY[0], "orders/orders-easy-01-cancel-pending-order.yaml")
    cfg = make_project(tmp_path / "p", tasks=tasks, agent=scripted("call-then-hang", 120),
                       mock={"faults": {"payment_required_after": 1}}, run={"concurrency": 2})
    assert run(cfg, tmp_path / "r") == 2
    # the first call is answered, the second gets the 402 that halts the run; the program that
    # got an answer and hangs is ended by the halt, not by its timeout, and is not recorded
    assert read_jsonl(tmp_path / "r" / "trials.jsonl") == []
    for task in ("incident-easy-01-cache-crashed", "orders-easy-01-cancel-pending-order"):
        seen = agent_log(tmp_path / "p", task)
        assert not alive(seen["pid"])
        if "grandchild" in seen:
            assert not alive(seen["grandchild"])


def test_the_programs_files_are_hashed_with_the_project(tmp_path: Path) -> None:
    from gate.project.load import load_project

    project_dir = tmp_path / "p"
    (project_dir / "agents").mkdir(parents=True)
    (project_dir / "agents" / "mine.py").write_text("print('v1')\n")
    cfg = make_project(project_dir, tasks=EASY,
                       agent={"command": ["python3", "agents/mine.py", "--flag"]})
    first = load_project(cfg).hashes["agents/mine.py"]
    (project_dir / "agents" / "mine.py").write_text("print('v2')\n")
    assert load_project(cfg).hashes["agents/mine.py"] != first
