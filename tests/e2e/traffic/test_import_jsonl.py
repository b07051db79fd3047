"""Plain JSONL sessions -> a replay suite that validates, smokes, and in which a sweep of
``mock/expert@0.8`` against ``mock/expert`` finds the regression; labels, dedup, coverage and
the selection flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from traffic_sessions import session, write_jsonl

from gate.cli import main
from gate.project.load import load_project


def imported(tmp_path: Path, sessions: list[dict[str, object]], *flags: str,
             out: str = "suite") -> Path:
    src = write_jsonl(tmp_path / "sessions.jsonl", sessions)
    assert main(["import-traces", "--from", str(src), "--env", "support",
                 "--out", str(tmp_path / out), *flags]) == 0
    return tmp_path / out


@pytest.mark.slow  # end to end: not in the fast loop
def test_imported_suite_validates_smokes_and_the_sweep_finds_the_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = imported(tmp_path, [session(i) for i in range(8)])
    config = str(suite / "gate.yaml")
    capsys.readouterr()
    assert main(["validate", "--config", config]) == 0
    assert "ok: 8 tasks, 4 tools" in capsys.readouterr().out
    assert main(["smoke", "--config", config, "--out", str(tmp_path / "smoke")]) == 0
    code = main(["sweep", "--config", config, "--candidate", "mock/expert@0.8",
                 "--baseline", "mock/expert", "--out", str(tmp_path / "run")])
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (code, results["verdict"]) == (1, "regression")
    assert results["arms"]["baseline"]["success_rate"] == 1.0


def test_unrecorded_calls_are_counted_apart_in_a_run(tmp_path: Path) -> None:
    suite = imported(tmp_path, [session(i) for i in range(4)])
    assert main(["run", "--config", str(suite / "gate.yaml"), "--model", "mock/random",
                 "--out", str(tmp_path / "run")]) == 0
    trials = [json.loads(ln) for ln in
              (tmp_path / "run" / "trials.jsonl").read_text().splitlines()]
    unrecorded = sum(t["invalid_by_kind"].get("unrecorded", 0) for t in trials)
    assert unrecorded > 0
    assert sum(t["invalid_actions"] for t in trials) >= unrecorded


def test_tasks_come_from_the_sessions(tmp_path: Path) -> None:
    suite = imported(tmp_path, [session(0), session(1)])
    project = load_project(suite / "gate.yaml")
    refund = next(lt for lt in project.tasks if "refund" in lt.task.instruction)
    assert refund.task.instruction == "Please refund order A-100, it arrived broken."
    assert refund.task.environment == "support"
    assert [c.tool for c in refund.fixture.reference_trajectory] == [
        "get_order", "get_customer", "refund_order"]
    assert refund.task.step_limit == 8  # 4 observed steps, half again, plus two
    assert refund.task.difficulty == "easy"
    assert refund.fixture.expected == {"writes": [{"tool": "refund_order", "args": {
        "order_id": "A-100", "amount": 20.0, "reason": "damaged"}}]}
    tool = yaml.safe_load((suite / "tools/support/refund_order.yaml").read_text())
    assert tool["parameters"]["properties"] == {
        "amount": {"type": "number"}, "order_id": {"type": "string"},
        "reason": {"type": "string"}}
    assert tool["parameters"]["required"] == ["amount", "order_id", "reason"]


def test_unlabelled_sessions_need_a_label_are_listed_and_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sessions = [session(0), session(2, label=None), session(4, label="bad"),
                {**session(6, label=None), "score": 0.9}, {**session(8, label=None),
                                                            "score": 0.2}]
    suite = imported(tmp_path, sessions)
    project = load_project(suite / "gate.yaml")
    assert sorted(lt.task.instruction for lt in project.tasks) == [
        "Please refund order A-100, it arrived broken.",
        "Please refund order A-106, it arrived broken."]  # label good, and score >= 0.5
    unlabelled = [task_id for _, task_id in project.needs_label]
    assert len(unlabelled) == 3
    capsys.readouterr()
    assert main(["validate", "--config", str(suite / "gate.yaml")]) == 0
    out = capsys.readouterr().out
    assert "3 task(s) need a label" in out
    assert all(task_id in out for task_id in unlabelled)


def test_a_good_twin_wins_over_an_unlabelled_one(tmp_path: Path) -> None:
    suite = imported(tmp_path, [session(0, label=None), session(0, extra_user="!")])
    project = load_project(suite / "gate.yaml")
    assert (len(project.tasks), project.needs_label) == (1, [])


def test_assume_good_labels_every_session(tmp_path: Path) -> None:
    suite = imported(tmp_path, [session(0, label=None), session(2, label=None)],
                     "--assume-good")
    assert len(load_project(suite / "gate.yaml").tasks) == 2


def test_near_identical_instructions_are_merged_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    twins = [session(0), session(0, extra_user="  "), session(0, extra_user="!"),
             {**session(0), "messages": [
                 {**m, "content": m["content"].upper()} if m["role"] == "user" else m
                 for m in session(0)["messages"]]}, session(2)]
    suite = imported(tmp_path, twins)
    summary = json.loads((suite / "traffic-summary.json").read_text())
    assert (summary["tasks"], summary["merged_duplicates"]) == (2, 3)
    assert "3 near-duplicate sessions merged" in capsys.readouterr().out


def test_coverage_summary_gives_percentiles_not_means(tmp_path: Path) -> None:
    sessions = [session(i) for i in range(20)]  # latency 1..20 s, cost 0.001..0.020
    suite = imported(tmp_path, sessions)
    summary = json.loads((suite / "traffic-summary.json").read_text())
    assert summary["latency_s"] == {"n": 20, "p50": 10.0, "p95": 19.0}
    assert summary["cost_usd"] == {"n": 20, "p50": 0.01, "p95": 0.019}
    assert summary["steps"] == {"n": 20, "p50": 4.0, "p95": 4.0}
    assert summary["tools"] == {"cancel_order": 3, "get_customer": 20, "get_order": 20,
                                "refund_order": 10}
    assert summary["intents"]["get_order > get_customer > refund_order"] == 10
    assert summary["labels"] == {"good": 20}


def test_limit_since_and_until_select_sessions(tmp_path: Path) -> None:
    sessions = [session(i) for i in range(10)]  # started 2026-11-01 .. 2026-11-10
    suite = imported(tmp_path, sessions, "--since", "2026-11-03T00:00:00Z",
                     "--until", "2026-11-09T00:00:00Z", "--limit", "4")
    summary = json.loads((suite / "traffic-summary.json").read_text())
    assert summary["left_out"] == {"beyond --limit": 2, "outside --since/--until": 4}
    project = load_project(suite / "gate.yaml")
    orders = sorted(lt.fixture.reference_trajectory[0].args["order_id"]
                    for lt in project.tasks)
    assert orders == ["A-102", "A-103", "A-104", "A-105"]  # the earliest four in the window


def test_the_teams_own_tool_files_are_used_instead_of_inferred_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tools = tmp_path / "my-tools"
    tools.mkdir()
    (tools / "get_order.yaml").write_text(
        "name: get_order\ndescription: Look up one order by id (team file).\n"
        "parameters:\n  type: object\n  properties:\n    order_id: {type: string, minLength: 5}\n"
        "  required: [order_id]\n  additionalProperties: false\n")
    (tools / "refund_order.yaml").write_text(  # amounts as text: 20.0 does not fit
        "name: refund_order\ndescription: Refund (team file).\n"
        "parameters:\n  type: object\n  properties:\n    order_id: {type: string}\n"
        "    amount: {type: string}\n    reason: {type: string}\n"
        "  additionalProperties: false\n")
    suite = imported(tmp_path, [session(0), session(1), session(3)], "--tools", str(tools))
    written = yaml.safe_load((suite / "tools/support/get_order.yaml").read_text())
    assert written["description"] == "Look up one order by id (team file)."
    assert written["parameters"]["properties"]["order_id"] == {"type": "string",
                                                               "minLength": 5}
    err = capsys.readouterr().err
    skipped = [ln for ln in err.splitlines() if ln.startswith(f"{tmp_path / 'sessions.jsonl'}:1:")]
    assert len(skipped) == 1  # session 0's refund does not fit the team's schema
    assert "s-0" in skipped[0]
    assert "amount" in skipped[0]
    assert len(load_project(suite / "gate.yaml").tasks) == 2


def test_a_broken_tool_file_is_exit_4_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tools = tmp_path / "my-tools"
    tools.mkdir()
    (tools / "bad.yaml").write_text("name: bad\nparameters: {type: object}\nsurprise: 1\n")
    src = write_jsonl(tmp_path / "s.jsonl", [session(0)])
    assert main(["import-traces", "--from", str(src), "--env", "support", "--out",
                 str(tmp_path / "out"), "--tools", str(tools)]) == 4
    assert f"{tools / 'bad.yaml'}:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_env_replay_uses_the_builtin_with_no_declaration(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "s.jsonl", [session(0), session(1)])
    assert main(["import-traces", "--from", str(src), "--env", "replay", "--out",
                 str(tmp_path / "suite")]) == 0
    assert "environments:" not in (tmp_path / "suite" / "gate.yaml").read_text()
    project = load_project(tmp_path / "suite" / "gate.yaml")
    assert {lt.task.environment for lt in project.tasks} == {"replay"}
    assert project.environment("replay").declaration.where == "gate (built-in)"


def test_the_replay_tools_are_the_tool_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = imported(tmp_path, [session(0), session(1)])
    (suite / "tools/support/get_customer.yaml").unlink()
    capsys.readouterr()
    assert main(["validate", "--config", str(suite / "gate.yaml")]) == 4
    err = capsys.readouterr().err
    assert "unknown tool 'get_customer'" in err
    assert "fixtures/support/support-001" in err
