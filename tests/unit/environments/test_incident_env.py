"""The incident environment: fixes, wrong fixes, restarts, resolution, telemetry, robustness."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from envsuite_helpers import case, fixture_words, random_value, task_ids, tools

from gate.config.schema import Fixture
from gate.environments.incident import IncidentEnvironment

NOEVICTION = "incident-hard-01-cache-noeviction-restart"
DB_CONNECTIONS = "incident-medium-01-web-5xx-db-connections"


def env_for(task_id: str, seed: int = 1) -> IncidentEnvironment:
    _, fixture = case(task_id)
    return IncidentEnvironment(fixture, seed)


def setc(env: IncidentEnvironment, service: str, key: str, value: str) -> Any:
    return env.call("update_config", {"service": service, "key": key, "value": value})


def resolve(env: IncidentEnvironment, service: str) -> Any:
    return env.call("resolve_incident", {"root_cause_service": service, "summary": "done"})


def test_right_fix_and_diagnosis_succeed() -> None:
    env = env_for(DB_CONNECTIONS)
    assert env.call("check_status", {"service": "database"}).content["status"] == "degraded"
    result = setc(env, "database", "max_connections", "500")  # any value in the accepted range
    assert not result.wrong_fix
    assert env.call("check_status", {"service": "web_server"}).content["status"] == "healthy"
    resolve(env, "database")
    outcome = env.outcome()
    assert outcome.success
    assert outcome.reward == 1.0


def test_value_outside_the_accepted_range_is_a_wrong_fix() -> None:
    env = env_for(DB_CONNECTIONS)
    assert setc(env, "database", "max_connections", "120").wrong_fix
    setc(env, "database", "max_connections", "300")
    resolve(env, "database")
    outcome = env.outcome()
    assert not outcome.success
    assert outcome.detail["wrong_fixes"] == 1
    assert outcome.reward <= 0.5


def test_symptom_service_restart_is_a_wrong_fix() -> None:
    env = env_for(DB_CONNECTIONS)
    assert env.call("restart_service", {"service": "web_server"}).wrong_fix
    assert env.call("restart_service", {"service": "cache"}).wrong_fix  # a healthy service
    assert env.snapshot()["wrong_fixes"][1]["reason"].startswith("restart of cache")


def test_wrong_root_cause_fails_even_with_the_right_fix() -> None:
    env = env_for(DB_CONNECTIONS)
    setc(env, "database", "max_connections", "300")
    resolve(env, "web_server")
    outcome = env.outcome()
    assert not outcome.success
    assert outcome.detail["root_cause_correct"] is False
    assert 0.0 < outcome.reward < 1.0


def test_restart_required_needs_the_restart_after_the_change() -> None:
    env = env_for(NOEVICTION)
    result = setc(env, "cache", "eviction_policy", "allkeys-lfu")  # an accepted alternative
    assert "restart" in result.content["note"]
    assert env.call("check_status", {"service": "cache"}).content["status"] == "degraded"
    assert not env.call("restart_service", {"service": "cache"}).wrong_fix
    assert env.call("check_status", {"service": "cache"}).content["status"] == "healthy"


def test_restart_before_the_change_is_a_wrong_fix() -> None:
    env = env_for(NOEVICTION)
    assert env.call("restart_service", {"service": "cache"}).wrong_fix
    setc(env, "cache", "eviction_policy", "allkeys-lru")
    env.call("restart_service", {"service": "cache"})
    resolve(env, "cache")
    assert not env.outcome().success


def test_unknown_key_and_unparseable_value_are_errors_not_changes() -> None:
    env = env_for(DB_CONNECTIONS)
    unknown = setc(env, "database", "max_conns", "300")
    assert unknown.error is not None
    assert "max_connections" in unknown.error
    bad = setc(env, "database", "max_connections", "lots")
    assert bad.error is not None
    assert not bad.wrong_fix
    same = setc(env, "database", "read_only", "FALSE")  # equal to the current value
    assert same.content["changed"] is False
    assert not same.wrong_fix
    assert env.snapshot()["wrong_fixes"] == []


def test_nothing_changes_after_resolution() -> None:
    env = env_for(DB_CONNECTIONS)
    resolve(env, "database")
    assert resolve(env, "database").error == "the incident is already resolved"
    assert setc(env, "database", "max_connections", "300").error is not None
    assert env.call("restart_service", {"service": "database"}).error is not None
    assert not env.outcome().success


def test_logs_respect_lines_and_depend_on_the_seed() -> None:
    args = {"service": "database", "lines": 5}
    first = env_for(DB_CONNECTIONS, seed=1).call("inspect_logs", args).content["lines"]
    again = env_for(DB_CONNECTIONS, seed=1).call("inspect_logs", args).content["lines"]
    other = env_for(DB_CONNECTIONS, seed=2).call("inspect_logs", args).content["lines"]
    assert len(first) == 5
    assert first == again
    assert first != other
    full = env_for(DB_CONNECTIONS).call("inspect_logs", {"service": "database"}).content
    assert any("too many clients" in line for line in full["lines"])


def test_metrics_recover_after_the_fix() -> None:
    env = env_for(DB_CONNECTIONS)
    before = env.call("inspect_metrics", {"service": "web_server"}).content
    assert before["now"]["error_rate_pct"] > 10
    setc(env, "database", "max_connections", "300")
    after = env.call("inspect_metrics", {"service": "web_server"}).content
    assert after["now"]["error_rate_pct"] < 1


def _broken(fixture: Fixture, **changes: Any) -> Fixture:
    data = fixture.model_dump()
    data.update(changes)
    return Fixture.model_validate(data)


def test_check_fixture_reports_bad_data_without_raising() -> None:
    _, fixture = case(DB_CONNECTIONS)
    state = json.loads(json.dumps(fixture.initial_state, default=str))
    state["services"]["cache"]["config"]["maxmemory_mb"] = [1]
    messages = IncidentEnvironment.check_fixture(_broken(fixture, initial_state=state))
    assert any(m.startswith("initial_state.services.cache.config.maxmemory_mb") for m in messages)
    state["services"]["cache"]["config"]["maxmemory_mb"] = 4096
    del state["services"]["message_queue"]
    messages = IncidentEnvironment.check_fixture(_broken(fixture, initial_state=state))
    assert any("missing services: message_queue" in m for m in messages), messages


@pytest.mark.parametrize(
    ("fix", "needle"),
    [
        (
            {"action": "update_config", "service": "database", "key": "nope", "value": 1},
            "no config",
        ),
        (
            {
                "action": "update_config",
                "service": "database",
                "key": "max_connections",
                "value": "300",
            },
            "type",
        ),
        (
            {
                "action": "update_config",
                "service": "database",
                "key": "max_connections",
                "value": 100,
            },
            "already satisfies",
        ),
        ({"action": "restart_service", "service": "cache", "key": "x"}, "only action"),
    ],
)
def test_check_fixture_rejects_bad_fixes(fix: dict[str, Any], needle: str) -> None:
    _, fixture = case(DB_CONNECTIONS)
    expected = {"root_cause_service": "database", "fixes": [fix]}
    messages = IncidentEnvironment.check_fixture(_broken(fixture, expected=expected))
    assert any(needle in m for m in messages), messages


def test_check_fixture_rejects_unknown_tools() -> None:
    _, fixture = case(DB_CONNECTIONS)
    bad = _broken(fixture, distractors=[{"tool": "rm_rf", "args": {}}])
    assert IncidentEnvironment.check_fixture(bad) == ["distractors.0.tool: unknown tool 'rm_rf'"]


@pytest.mark.parametrize("task_id", [t for t in task_ids() if t.startswith("incident-")][::4])
def test_random_schema_valid_calls_never_raise_and_rarely_succeed(task_id: str) -> None:
    _, fixture = case(task_id)
    defs = tools("incident")
    words = fixture_words(fixture)
    rng = random.Random(task_id)
    successes = 0
    for trial in range(15):
        env = IncidentEnvironment(fixture, trial)
        for _ in range(12):
            tool = rng.choice(sorted(defs))
            result = env.call(tool, random_value(defs[tool].parameters, rng, words))
            json.dumps(result.content)
        successes += env.outcome().success
    assert successes <= 1
