"""Shared helpers of the environment tests: load the suite, run calls, make random arguments."""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path
from typing import Any

from paths import REPO

from gate.config.schema import Fixture, Task, ToolCall, ToolDef
from gate.config.yamlio import load_yaml, model_from_doc
from gate.environments import Environment, ToolResult
from gate.environments.registry import EnvironmentRegistry

ROOT = REPO
ENV_NAMES = ("incident", "orders")
# The built-ins, resolved through the same registry as a repository's own environments.
_REGISTRY = EnvironmentRegistry(ROOT, {}, "gate.yaml")
ENVIRONMENTS: dict[str, type[Environment]] = {n: _REGISTRY.get(n) for n in ENV_NAMES}


@cache
def tasks() -> tuple[tuple[Path, Task, Fixture], ...]:
    out = []
    for env in ENV_NAMES:
        for path in sorted((ROOT / "tasks" / env).glob("*.yaml")):
            task = model_from_doc(Task, load_yaml(path))
            fixture = model_from_doc(Fixture, load_yaml(ROOT / "fixtures" / task.fixture))
            out.append((path, task, fixture))
    return tuple(out)


def task_ids() -> list[str]:
    return [t.id for _, t, _ in tasks()]


def case(task_id: str) -> tuple[Task, Fixture]:
    for _, task, fixture in tasks():
        if task.id == task_id:
            return task, fixture
    raise KeyError(task_id)


@cache
def tools(env: str) -> dict[str, ToolDef]:
    out = {}
    for path in sorted((ROOT / "tools" / env).glob("*.yaml")):
        tool = model_from_doc(ToolDef, load_yaml(path))
        out[path.stem] = tool
    return out


def make(task: Task, fixture: Fixture, seed: int = 1) -> Environment:
    return ENVIRONMENTS[task.environment](fixture, seed)


def run(env: Environment, calls: list[ToolCall]) -> list[ToolResult]:
    return [env.call(c.tool, c.args) for c in calls]


def transcript(env: Environment, results: list[ToolResult]) -> str:
    """Everything observable about a run, as one byte-exact text."""
    out = env.outcome()
    record = {
        "results": [[r.content, r.error, r.wrong_fix, r.policy_violation] for r in results],
        "outcome": [out.success, out.reward, out.detail],
        "snapshot": env.snapshot(),
    }
    return json.dumps(record, sort_keys=True)


def random_value(schema: dict[str, Any], rng: random.Random, words: list[str]) -> Any:
    """A random value valid against ``schema`` (the tool-schema subset)."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        keys = [k for k in props if k in schema.get("required", []) or rng.random() < 0.5]
        return {k: random_value(props[k], rng, words) for k in keys}
    if kind == "string":
        choice = rng.choice([*words, "", "x" * 5, "0", "-1", "true", "O-0000"])
        return choice.ljust(schema.get("minLength", 0), "z")
    if kind in ("integer", "number"):
        lo, hi = schema.get("minimum", -1000), schema.get("maximum", 1000)
        return rng.randint(int(lo), int(hi))
    if kind == "boolean":
        return rng.random() < 0.5
    return [random_value(schema.get("items", {}), rng, words) for _ in range(rng.randint(0, 2))]


def fixture_words(fixture: Fixture) -> list[str]:
    """Strings found in the fixture (ids, keys, values), so random calls sometimes hit."""
    words: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                words.add(str(k))
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str | int | float) and len(str(value)) < 40:
            words.add(str(value))

    walk(fixture.initial_state)
    return sorted(words)
