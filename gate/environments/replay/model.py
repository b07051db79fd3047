"""The shapes of a replay fixture's ``initial_state`` and ``expected`` (written by
``gate import-traces``, editable by hand), and the per-argument match rules of writes."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from gate.environments.common import StateModel, canonical_json


class Tolerance(StateModel):
    """Numbers equal within ``tolerance`` (absolute)."""

    tolerance: float = Field(ge=0)


Rule = Literal["exact", "set", "ignore"] | Tolerance
"""How one argument of an expected write is compared: ``exact`` (equal JSON values, the
default), ``set`` (lists equal as sets), ``ignore`` (anything, or absent), or
``{tolerance: X}`` (numbers within X)."""


class Recorded(StateModel):
    """One call seen in production and what it returned (``error`` when it failed)."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    error: str | None = None


class ReplayState(StateModel):
    """``initial_state``: the recorded calls (reads and writes) and which tools write."""

    writes: list[str] = Field(default_factory=list, description="tools that change the world")
    recorded: list[Recorded] = Field(default_factory=list)


class ExpectedWrite(StateModel):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    match: dict[str, Rule] = Field(default_factory=dict, description="argument -> rule")


class ReplayExpected(StateModel):
    """``expected``: the writes a good session makes (in any order, each exactly once)."""

    writes: list[ExpectedWrite] = Field(default_factory=list)


def canonical_args(args: dict[str, Any]) -> dict[str, Any]:
    """Arguments as compared and looked up: absent and ``null`` are the same, at any depth."""
    return {k: _without_nulls(v) for k, v in args.items() if v is not None}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return canonical_args(value)
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None]
    return value


def call_key(tool: str, args: dict[str, Any]) -> str:
    return canonical_json([tool, canonical_args(args)])


def _same_set(want: Any, got: Any) -> bool:
    if not isinstance(want, list) or not isinstance(got, list):
        return False
    return sorted(map(canonical_json, want)) == sorted(map(canonical_json, got))


def _close(want: Any, got: Any, tolerance: float) -> bool:
    numbers = (int, float)
    if isinstance(want, bool) or isinstance(got, bool):
        return False
    if not isinstance(want, numbers) or not isinstance(got, numbers):
        return False
    return abs(float(want) - float(got)) <= tolerance


def value_matches(rule: Rule, want: Any, got: Any) -> bool:
    if rule == "ignore":
        return True
    if want is None or got is None:
        return want is None and got is None
    if rule == "set":
        return _same_set(want, got)
    if isinstance(rule, Tolerance):
        return _close(want, got, rule.tolerance)
    return bool(json.loads(canonical_json(want)) == json.loads(canonical_json(got)))


def write_matches(expected: ExpectedWrite, tool: str, args: dict[str, Any]) -> bool:
    """Same tool, and every argument (of either side) equal under its rule."""
    if expected.tool != tool:
        return False
    want, got = canonical_args(expected.args), canonical_args(args)
    for name in sorted(set(want) | set(got)):
        rule: Rule = expected.match.get(name, "exact")
        if not value_matches(rule, want.get(name), got.get(name)):
            return False
    return True
