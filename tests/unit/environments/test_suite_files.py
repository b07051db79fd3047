"""The benchmark suite as files: counts, ids, references between files, tool schemas."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from envsuite_helpers import ENV_NAMES, ENVIRONMENTS, ROOT, tasks, tools

from gate.project.schema_check import schema_problems, validate


def test_counts_per_environment_and_difficulty() -> None:
    by_env = Counter(task.environment for _, task, _ in tasks())
    assert by_env["incident"] >= 20
    assert by_env["orders"] >= 20
    assert sum(by_env.values()) >= 40
    for env in ENV_NAMES:
        levels = Counter(t.difficulty for _, t, _ in tasks() if t.environment == env)
        assert set(levels) == {"easy", "medium", "hard"}, env
        assert min(levels.values()) >= 6, (env, levels)


def test_task_ids_are_unique_and_match_file_names() -> None:
    ids = [task.id for _, task, _ in tasks()]
    assert len(ids) == len(set(ids))
    for path, task, _ in tasks():
        assert path.stem == task.id
        assert path.parent.name == task.environment
        assert task.id.startswith(f"{task.environment}-{task.difficulty}-")


def test_every_fixture_is_referenced_exactly_once() -> None:
    on_disk = {
        str(p.relative_to(ROOT / "fixtures"))
        for env in ENV_NAMES
        for p in (ROOT / "fixtures" / env).glob("*.yaml")
    }
    referenced = [task.fixture for _, task, _ in tasks()]
    assert sorted(referenced) == sorted(on_disk)
    for _, task, _ in tasks():
        assert task.fixture.startswith(f"{task.environment}/")


def test_step_limits_leave_room_for_mistakes() -> None:
    for _, task, fixture in tasks():
        assert task.step_limit >= len(fixture.reference_trajectory) + 4, task.id


def test_prompts_exist() -> None:
    for env in ENV_NAMES:
        assert len((ROOT / "prompts" / f"{env}.md").read_text(encoding="utf-8")) > 200


@pytest.mark.parametrize("env", ENV_NAMES)
def test_tool_files_match_the_implementation(env: str) -> None:
    defs = tools(env)
    assert set(defs) == set(ENVIRONMENTS[env].tool_names)
    for stem, tool in defs.items():
        assert tool.name == stem
        assert schema_problems(tool.parameters) == []
        assert tool.parameters["type"] == "object"


def _objects(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = [schema] if schema.get("type") == "object" else []
    for sub in schema.get("properties", {}).values():
        found += _objects(sub)
    if "items" in schema:
        found += _objects(schema["items"])
    return found


@pytest.mark.parametrize("env", ENV_NAMES)
def test_every_object_schema_is_closed(env: str) -> None:
    for tool in tools(env).values():
        for obj in _objects(tool.parameters):
            assert obj.get("additionalProperties") is False, tool.name


def test_every_fixture_call_is_schema_valid() -> None:
    for _, task, fixture in tasks():
        defs = tools(task.environment)
        calls = [*fixture.required_evidence, *fixture.distractors, *fixture.reference_trajectory]
        for call in calls:
            assert call.tool in defs, (task.id, call.tool)
            assert validate(call.args, defs[call.tool].parameters) == [], (task.id, call)
            # evidence may omit optional args, but what it names must be valid on its own
    for _, task, fixture in tasks():
        assert fixture.distractors, task.id
        assert fixture.reference_output.strip()
