"""The built-in ``replay`` environment, from its public door: recorded answers, unrecorded
calls as their own invalid-action kind, writes graded under per-argument match rules."""

from __future__ import annotations

from typing import Any

import pytest

from gate.agent.loop import TrialSpec, TrialTrace, execute_call
from gate.config.schema import Task
from gate.environments import Fixture
from gate.environments.registry import BUILTIN
from gate.environments.replay import ReplayEnvironment
from gate.project.load import LoadedTask

READ = {"tool": "get_order", "args": {"order_id": "A-1"}}


def fixture(expected: list[dict[str, Any]], recorded: list[dict[str, Any]] | None = None
            ) -> Fixture:
    recorded = recorded if recorded is not None else [
        {**READ, "result": {"status": "paid"}},
        {**READ, "result": {"status": "refunded"}},
        {"tool": "refund_order", "args": {"order_id": "A-1", "amount": 10.0},
         "result": {"ok": True}},
    ]
    return Fixture.model_validate({
        "initial_state": {"writes": ["refund_order", "cancel_order"], "recorded": recorded},
        "required_evidence": [READ], "expected": {"writes": expected},
        "reference_trajectory": [READ], "reference_output": "done"})


REFUND = {"tool": "refund_order", "args": {"order_id": "A-1", "amount": 10.0,
                                           "tags": ["a", "b"], "note": "sorry"}}


def test_replay_is_a_builtin_of_the_registry() -> None:
    assert BUILTIN["replay"] == "gate.environments.replay.env:ReplayEnvironment"
    assert ReplayEnvironment.tools_from_files is True


def test_recorded_answers_come_in_order_and_the_last_repeats() -> None:
    env = ReplayEnvironment(fixture([]), 0)
    answers = [env.call("get_order", {"order_id": "A-1", "extra": None}).content
               for _ in range(3)]
    assert answers == [{"status": "paid"}, {"status": "refunded"}, {"status": "refunded"}]


def test_an_unrecorded_call_is_a_tool_error_of_its_own_invalid_kind() -> None:
    env = ReplayEnvironment(fixture([]), 0)
    result = env.call("get_order", {"order_id": "A-2"})
    assert result.error is not None
    assert "no recorded answer" in result.error
    assert result.invalid == "unrecorded"
    task = Task(id="t", environment="shop", difficulty="easy", title="t", instruction="go",
                fixture="shop/t.yaml", step_limit=5)
    spec = TrialSpec(LoadedTask(task, env.fixture, "t.yaml", "f.yaml"), "m", 0, "", [],
                     {"get_order": {"type": "object", "properties": {
                         "order_id": {"type": "string"}}}}, 10, 0.0)
    trace = TrialTrace()
    reply = execute_call(spec, env, {"id": "c1", "function": {
        "name": "get_order", "arguments": '{"order_id": "A-2"}'}}, trace, set())
    assert "no recorded answer" in reply["content"]
    assert (dict(trace.invalid), trace.valid_calls, trace.env_errors) == ({"unrecorded": 1}, 0, 0)
    assert trace.calls[0]["invalid"] == "unrecorded"


@pytest.mark.parametrize(("rules", "args", "ok"), [
    ({}, REFUND["args"], True),
    ({}, {**REFUND["args"], "amount": 10.001}, False),
    ({"amount": {"tolerance": 0.01}}, {**REFUND["args"], "amount": 10.001}, True),
    ({"amount": {"tolerance": 0.01}}, {**REFUND["args"], "amount": 10.5}, False),
    ({}, {**REFUND["args"], "tags": ["b", "a"]}, False),
    ({"tags": "set"}, {**REFUND["args"], "tags": ["b", "a"]}, True),
    ({"tags": "set"}, {**REFUND["args"], "tags": ["b"]}, False),
    ({}, {**REFUND["args"], "note": "apologies"}, False),
    ({"note": "ignore"}, {**REFUND["args"], "note": "apologies"}, True),
    ({"note": "ignore"}, {k: v for k, v in REFUND["args"].items() if k != "note"}, True),
    ({"note": "exact"}, {**REFUND["args"], "order_id": "A-9"}, False),
])
def test_writes_are_graded_under_their_match_rules(
    rules: dict[str, Any], args: dict[str, Any], ok: bool
) -> None:
    env = ReplayEnvironment(fixture([{**REFUND, "match": rules}]), 0)
    env.call("get_order", {"order_id": "A-1"})
    result = env.call("refund_order", args)
    assert result.wrong_fix is (not ok)
    assert env.outcome().success is ok


def test_a_wrong_write_fails_even_when_the_right_one_follows() -> None:
    env = ReplayEnvironment(fixture([REFUND]), 0)
    env.call("cancel_order", {"order_id": "A-1"})
    env.call("refund_order", REFUND["args"])
    out = env.outcome()
    assert (out.success, out.detail["wrong_writes"], out.detail["matched_writes"]) == (
        False, 1, 1)
    assert out.reward < 0.5


def test_each_expected_write_counts_once() -> None:
    env = ReplayEnvironment(fixture([REFUND]), 0)
    env.call("refund_order", REFUND["args"])
    assert env.call("refund_order", REFUND["args"]).wrong_fix is True
    assert env.outcome().success is False


def test_a_read_only_session_needs_its_reads() -> None:
    env = ReplayEnvironment(fixture([]), 0)
    assert env.outcome().success is False
    env.call("get_order", {"order_id": "A-1"})
    assert env.outcome().success is True
    assert env.outcome().reward == 1.0


def test_a_write_that_failed_in_production_is_answered_not_graded() -> None:
    failed = {"tool": "cancel_order", "args": {"order_id": "A-1"}, "error": "already shipped"}
    env = ReplayEnvironment(fixture([], [{**READ, "result": {}}, failed]), 0)
    env.call("get_order", {"order_id": "A-1"})
    result = env.call("cancel_order", {"order_id": "A-1"})
    assert (result.error, result.wrong_fix) == ("already shipped", False)
    assert env.outcome().success is True


def test_check_fixture_names_the_bad_paths() -> None:
    bad = Fixture.model_validate({
        "initial_state": {"writes": ["refund_order"], "recorded": [{"tool": 3}],
                          "surprise": 1},
        "required_evidence": [READ],
        "expected": {"writes": [{"tool": "cancel_order", "args": {},
                                 "match": {"x": "fuzzy"}}]},
        "reference_trajectory": [READ], "reference_output": "done"})
    messages = ReplayEnvironment.check_fixture(bad)
    assert any(m.startswith("initial_state.surprise") for m in messages)
    assert any(m.startswith("initial_state.recorded.0.tool") for m in messages)
    assert any(m.startswith("expected.writes.0.match.x") for m in messages)
