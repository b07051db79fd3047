"""Every task: fixture valid, expert trajectory succeeds, mistakes fail, runs are deterministic."""

from __future__ import annotations

import json

import pytest
from envsuite_helpers import ENVIRONMENTS, case, make, run, task_ids, transcript

from gate.config.schema import ToolCall
from gate.environments.common import call_matches

IDS = task_ids()


@pytest.mark.parametrize("task_id", IDS)
def test_fixture_is_valid(task_id: str) -> None:
    task, fixture = case(task_id)
    assert ENVIRONMENTS[task.environment].check_fixture(fixture) == []


@pytest.mark.parametrize("task_id", IDS)
def test_reference_trajectory_succeeds_cleanly(task_id: str) -> None:
    task, fixture = case(task_id)
    env = make(task, fixture)
    results = run(env, fixture.reference_trajectory)
    for call, result in zip(fixture.reference_trajectory, results, strict=True):
        flags = (result.error, result.wrong_fix, result.policy_violation)
        assert flags == (None, False, None), call
        assert len(json.dumps(result.content)) < 2000, call
    outcome = env.outcome()
    assert outcome.success, outcome.detail
    assert outcome.reward == 1.0
    json.dumps(env.snapshot())
    json.dumps(outcome.detail)


@pytest.mark.parametrize("task_id", IDS)
def test_required_evidence_is_in_reference_trajectory(task_id: str) -> None:
    _, fixture = case(task_id)
    made = fixture.reference_trajectory
    for wanted in fixture.required_evidence:
        assert any(call_matches(wanted, c.tool, c.args) for c in made), wanted


@pytest.mark.parametrize("task_id", IDS)
def test_a_wrong_fix_fails_the_task(task_id: str) -> None:
    task, fixture = case(task_id)
    wrong = [d for d in fixture.distractors if make(task, fixture).call(d.tool, d.args).wrong_fix]
    assert wrong, "every task needs at least one wrong-fix distractor"
    for distractor in wrong:
        env = make(task, fixture)
        run(env, [distractor, *fixture.reference_trajectory])
        outcome = env.outcome()
        assert not outcome.success
        assert 0.0 <= outcome.reward < 1.0


@pytest.mark.parametrize("task_id", IDS)
def test_distractors_alone_fail(task_id: str) -> None:
    task, fixture = case(task_id)
    env = make(task, fixture)
    run(env, fixture.distractors)
    outcome = env.outcome()
    assert not outcome.success
    assert 0.0 <= outcome.reward < 1.0


@pytest.mark.parametrize("task_id", IDS)
def test_runs_are_deterministic(task_id: str) -> None:
    task, fixture = case(task_id)
    calls: list[ToolCall] = [*fixture.distractors, *fixture.reference_trajectory]
    texts = []
    for _ in range(2):
        env = make(task, fixture, seed=42)
        texts.append(transcript(env, run(env, calls)))
    assert texts[0] == texts[1]


@pytest.mark.parametrize("task_id", IDS)
def test_reward_is_partial_without_resolution(task_id: str) -> None:
    task, fixture = case(task_id)
    env = make(task, fixture)
    run(env, fixture.reference_trajectory[:-1])
    outcome = env.outcome()
    assert 0.0 <= outcome.reward <= 1.0
    if task.environment == "incident":  # the last expert step is resolve_incident
        assert not outcome.success
        assert outcome.reward < 1.0
