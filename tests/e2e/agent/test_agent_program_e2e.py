"""A team's own agent program on the simulated models, end to end through the CLI: the example
agent (official openai SDK, streaming, and the official mcp client) solves the tasks, every
model call is an audit line that matches a request the mock provider received, and every tool
call the program made is in its trial's trace."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from agent_support import PROGRAMS, agent_log, alive, make_project, program

from gate.cli import main
from gate.engine.transcripts import read_transcripts
from gate.rundir.audit import attempts
from gate.rundir.jsonl import read_jsonl

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it


def audit_of(audit: list[dict], trial: dict) -> list[dict]:  # type: ignore[type-arg]
    return [a for a in audit if (a["arm"], a["task"], a["round"]) == (
        trial["arm"], trial["task"], trial["round"])]


def _requests(log: Path) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in read_jsonl(log) if e["event"] == "request"]


def _fixture(project: Path, task_file: str) -> dict:  # type: ignore[type-arg]
    task = yaml.safe_load((project / "tasks" / task_file).read_text())
    return yaml.safe_load((project / "fixtures" / task["fixture"]).read_text())  # type: ignore[no-any-return]


def test_example_agent_solves_tasks_and_every_call_is_audited(tmp_path: Path) -> None:
    log = tmp_path / "mock-requests.jsonl"
    cfg = make_project(tmp_path / "p", agent=program(str(PROGRAMS / "logging_agent.py")),
                       mock={"faults": {"rate": 0.25, "kinds": ["429", "500", "error_in_body"],
                                        "log": str(log)}})
    out = tmp_path / "run"
    code = main(["run", "--config", str(cfg), "--model", "mock/expert", "--out", str(out)])
    assert code == 0
    trials = read_jsonl(out / "trials.jsonl")
    audit = attempts(read_jsonl(out / "audit.jsonl"))
    assert len(trials) == 3
    assert all(t["status"] == "scored" and t["success"] for t in trials), trials
    assert all(t["agent"]["kind"] == "program" and t["agent"]["exit_code"] == 0 for t in trials)
    assert all(t["agent"]["unseeded_calls"] == 0 for t in trials)  # each call had the seed
    # every request the mock provider received is one audit line, and nothing else is
    received = _requests(log)
    assert len(audit) == len(received)
    # and each was announced before it was sent (two-phase audit through the endpoint too)
    raw = read_jsonl(out / "audit.jsonl")
    assert sum(1 for line in raw if line.get("phase") == "started") == len(received)
    assert Counter(a["outcome"] != "ok" for a in audit)[True] == sum(
        1 for r in received if r["fault"] is not None) > 0
    ok_ids = [a["response_id"] for a in audit if a["outcome"] == "ok"]
    assert sorted(ok_ids) == sorted(i for t in trials for i in t["response_ids"])
    # every tool call the program made is in its trial's trace, in order
    for t in trials:
        made = [json.loads(line) for f in sorted((tmp_path / "p" / "agent-log").glob(
            f"calls-{t['task']}-*.jsonl")) for line in f.read_text().splitlines()]
        traced = t["calls"]
        assert len(made) == len(traced) == t["tool_calls"] > 0
        assert [(m["tool"], json.loads(m["arguments"])) for m in made] == [
            (c["tool"], c["args"]) for c in traced]
    # each trial's transcript holds what went through the endpoint: every answered call (the
    # response ids the trial cites, in order), each message once, every MCP call timed, and
    # the program's stdout as the final answer
    transcripts = read_transcripts(out)
    for t in trials:
        tx = transcripts[t["transcript_sha256"]]
        assert [s.response_id for s in tx.steps if s.answer is not None] == t["response_ids"]
        assert len(tx.steps) == len({a["step"] for a in audit_of(audit, t)})  # retries: one
        assert [(c.call_id, c.tool) for c in tx.tool_calls] == [
            (c["call_id"], c["tool"]) for c in t["calls"]]
        roles = [m["role"] for m in tx.messages]
        assert roles.count("user") == 1  # the conversation repeats, the transcript does not
        assert roles.count("tool") == t["tool_calls"]
        final = tx.messages[tx.steps[-1].answer]
        assert tx.final_answer == final["content"].strip()
    # the simulated expert recognised each task from the program's own messages
    for t, task_file in zip(sorted(trials, key=lambda t: t["task"]), sorted(
            ["incident/incident-easy-01-cache-crashed.yaml",
             "incident/incident-hard-02-retry-storm-two-faults.yaml",
             "orders/orders-easy-01-cancel-pending-order.yaml"]), strict=True):
        reference = _fixture(tmp_path / "p", task_file)["reference_trajectory"]
        assert [(c["tool"], c["args"]) for c in t["calls"]] == [
            (r["tool"], r.get("args", {})) for r in reference]


def test_short_sweep_with_the_example_agent(tmp_path: Path) -> None:
    log = tmp_path / "mock-requests.jsonl"
    cfg = make_project(tmp_path / "p", tasks=(
        "incident/incident-easy-01-cache-crashed.yaml",
        "orders/orders-easy-01-cancel-pending-order.yaml"),
        agent=program(str(PROGRAMS / "logging_agent.py")), mock={"faults": {"log": str(log)}},
        max_rounds=1)
    out = tmp_path / "sweep"
    code = main(["sweep", "--config", str(cfg), "--candidate", "mock/expert@0.8",
                 "--baseline", "mock/expert", "--out", str(out)])
    trials = read_jsonl(out / "trials.jsonl")
    audit = attempts(read_jsonl(out / "audit.jsonl"))
    assert code in (0, 1, 3)
    assert len(trials) == 4
    assert {t["arm"] for t in trials} == {"candidate", "baseline"}
    assert all(t["status"] == "scored" and t["agent"]["kind"] == "program" for t in trials)
    assert len(audit) == len(_requests(log)) == sum(t["steps"] for t in trials)
    assert main(["verify", "--run", str(out)]) == 0


def test_no_child_survives_and_nothing_listens(tmp_path: Path) -> None:
    from agent_support import port_of, port_open, scripted

    cfg = make_project(tmp_path / "p", tasks=("incident/incident-easy-01-cache-crashed.yaml",),
                       agent=scripted("call-then-exit-3"))
    assert main(["run", "--config", str(cfg), "--model", "mock/expert",
                 "--out", str(tmp_path / "r")]) == 0
    seen = agent_log(tmp_path / "p", "incident-easy-01-cache-crashed")
    assert not alive(seen["pid"])
    assert not port_open(port_of(seen["env"]["OPENAI_BASE_URL"]))
    assert not port_open(port_of(seen["env"]["GATE_MCP_URL"]))


def test_unparseable_tool_arguments_are_counted_at_the_endpoint(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=("incident/incident-easy-01-cache-crashed.yaml",),
                       agent=program(str(PROGRAMS / "logging_agent.py")))
    out = tmp_path / "run"
    main(["run", "--config", str(cfg), "--model", "mock/garbled", "--out", str(out)])
    (trial,) = read_jsonl(out / "trials.jsonl")
    assert trial["status"] == "scored"
    assert trial["agent"]["mcp_calls"] == 0  # the program could not pass any of them on
    assert trial["invalid_by_kind"] == {"unparseable": trial["tool_calls"]}
    assert trial["tool_calls"] > 0
    assert trial["parseable_rate"] == 0.0
