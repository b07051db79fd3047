"""The replay suite's tool files: the definitions the traces carry when they carry them
(trimmed to the schema subset gate checks), otherwise inferred from the calls seen: argument
names, JSON types, ``required`` when an argument is present in every call."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from gate.environments.replay.model import canonical_args
from gate.project.schema_check import SUPPORTED, TYPES, schema_problems, validate
from gate.traffic.session import Call

_JSON_TYPES = (("boolean", bool), ("integer", int), ("number", float), ("string", str),
               ("array", list), ("object", dict))


def json_type(value: Any) -> str | None:
    for name, tp in _JSON_TYPES:
        if isinstance(value, tp):
            return name
    return None


def _merged(types: set[str]) -> str | None:
    if types <= {"integer", "number"} and types:
        return "number" if "number" in types else "integer"
    return next(iter(types)) if len(types) == 1 else None


def infer_schema(calls: list[Call]) -> dict[str, Any]:
    """An object schema every one of ``calls`` satisfies (``null`` arguments count as absent)."""
    return infer([canonical_args(c.args) for c in calls]) or {
        "type": "object", "properties": {}, "additionalProperties": False}


def infer(values: list[Any]) -> dict[str, Any] | None:
    """A schema all ``values`` satisfy: objects by property (``required`` when present in
    every one), arrays by item; None when their JSON types disagree."""
    values = [v for v in values if v is not None]
    kind = _merged({json_type(v) or "string" for v in values})
    if kind is None:
        return None
    schema: dict[str, Any] = {"type": kind}
    if kind == "array":
        item = infer([x for v in values for x in v])
        if item is not None:
            schema["items"] = item
    if kind == "object":
        keys = sorted({k for v in values for k, x in v.items() if x is not None})
        props = {k: infer([v.get(k) for v in values]) for k in keys}
        schema["properties"] = {k: p for k, p in props.items() if p is not None}
        schema["required"] = [k for k in schema["properties"]
                              if all(v.get(k) is not None for v in values)]
        schema["additionalProperties"] = False  # gate's tool files close every object
    return schema


def sanitize(schema: Any) -> dict[str, Any]:
    """A recorded definition's schema cut to the supported subset (``type`` lists resolved to
    their first non-null type, unsupported keywords dropped)."""
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}, "additionalProperties": False}
    out: dict[str, Any] = {k: v for k, v in schema.items() if k in SUPPORTED}
    kind = out.get("type")
    if isinstance(kind, list):
        kind = next((t for t in kind if t != "null"), "string")
    out["type"] = kind if kind in TYPES else ("object" if "properties" in out else "string")
    if out["type"] == "object":  # gate's tool files close every object
        out["additionalProperties"] = False
    else:
        out.pop("additionalProperties", None)
    if "properties" in out:
        out["properties"] = {str(k): sanitize(v) for k, v in dict(out["properties"]).items()}
        out["required"] = [r for r in out.get("required", []) if r in out["properties"]]
    if "items" in out:
        out["items"] = sanitize(out["items"])
    if not schema_problems(out):
        return out
    return {"type": "object", "properties": {}, "additionalProperties": False} if (
        out["type"] == "object") else {"type": out["type"]}


def tool_files(
    calls: Iterable[Call], recorded: dict[str, dict[str, Any]], writes: set[str]
) -> dict[str, dict[str, Any]]:
    """name -> tool file content (OpenAI function format) for every tool called."""
    by_tool: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        by_tool[call.tool].append(call)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(by_tool):
        definition = recorded.get(name)
        if definition is not None:
            params = sanitize(definition.get("parameters"))
            if params.get("type") != "object":
                params = infer_schema(by_tool[name])
            text = str(definition.get("description") or "").strip()
        else:
            params, text = infer_schema(by_tool[name]), ""
        kind = "changes the world (graded)" if name in writes else "reads"
        description = text or f"{name}: {kind}; schema inferred from production traffic."
        out[name] = {"name": name, "description": description, "parameters": params}
    return out


def call_problems(call: Call, tools: dict[str, dict[str, Any]]) -> list[str]:
    """Why a recorded call does not fit its tool's schema (empty when it does)."""
    return validate(canonical_args(call.args), tools[call.tool]["parameters"],
                    f"{call.tool} arguments")


def recorded_definitions(defs: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """OpenAI tool definitions (``{"type": "function", "function": {...}}`` or the bare
    function) by name."""
    out: dict[str, dict[str, Any]] = {}
    for d in defs:
        fn = d.get("function") if isinstance(d.get("function"), dict) else d
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            out.setdefault(fn["name"], fn)
    return out
