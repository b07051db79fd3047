"""Helpers shared by the built-in environments (and the traffic importer): stable seeding,
evidence matching, messages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gate.config.schema import Fixture, ToolCall
from gate.config.yamlio import error_message


class StateModel(BaseModel):
    """Base of the environments' own state models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def canonical_json(value: Any) -> str:
    """One byte-exact JSON text per value (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def stable_int(*parts: Any) -> int:
    """A 64-bit integer derived from ``parts`` with SHA-256 (never Python's ``hash()``)."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big")


def args_match(wanted: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """True when every argument in ``wanted`` is present in ``actual`` with an equal value."""
    return all(key in actual and actual[key] == value for key, value in wanted.items())


def call_matches(wanted: ToolCall, tool: str, args: Mapping[str, Any]) -> bool:
    """Evidence matching: same tool name, and the wanted arguments are a subset of the call's."""
    return wanted.tool == tool and args_match(wanted.args, args)


def evidence_found(required: Iterable[ToolCall], calls: list[ToolCall]) -> list[bool]:
    """For each required call, whether some call made matches it."""
    return [any(call_matches(r, c.tool, c.args) for c in calls) for r in required]


def validation_messages(prefix: str, exc: ValidationError) -> list[str]:
    """Pydantic errors as ``prefix.loc: message`` strings."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]))
        out.append(f"{loc}: {error_message(err)}")
    return out


def unknown_tool_messages(fixture: Fixture, tool_names: frozenset[str]) -> list[str]:
    """Fixture tool calls that name a tool the environment does not implement."""
    out = []
    lists = {
        "required_evidence": fixture.required_evidence,
        "distractors": fixture.distractors,
        "reference_trajectory": fixture.reference_trajectory,
    }
    for field, calls in lists.items():
        for i, call in enumerate(calls):
            if call.tool not in tool_names:
                out.append(f"{field}.{i}.tool: unknown tool {call.tool!r}")
    return out
