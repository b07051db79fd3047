"""Tool arguments checked against the tool's JSON Schema, by the ``jsonschema`` library
(Draft 2020-12).

What a tool file may declare is narrower than JSON Schema, on purpose (``schema_problems``,
run by ``gate validate``):

- the keywords are those the simulated models can draw valid arguments from and a provider's
  function calling understands: type (object, string, integer, number, boolean, array),
  properties, required, enum, items, additionalProperties, description, minimum, maximum,
  minLength. Anything else is refused rather than silently half-used;
- every object is closed, and says so: ``additionalProperties: false`` is required on each
  object schema. An argument the tool does not declare is an invalid action, and the file shows
  it (JSON Schema alone would accept any extra property where the keyword is absent).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

SUPPORTED = frozenset(
    {
        "type",
        "properties",
        "required",
        "enum",
        "items",
        "additionalProperties",
        "description",
        "minimum",
        "maximum",
        "minLength",
    }
)
TYPES = frozenset({"object", "string", "integer", "number", "boolean", "array"})


def schema_problems(schema: Any, where: str = "parameters") -> list[str]:
    """Problems with a tool's schema itself: not a JSON Schema, a keyword outside the supported
    set, an unknown type, an object that is not closed, a required name that is no property."""
    if not isinstance(schema, dict):
        return [f"{where}: a schema must be a mapping"]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [f"{where}{_path(exc.absolute_path)}: not a valid JSON Schema: {exc.message}"]
    return _subset_problems(schema, where)


def _subset_problems(schema: dict[str, Any], where: str) -> list[str]:
    problems = [f"{where}: unsupported keyword {k!r}" for k in schema if k not in SUPPORTED]
    if schema.get("type") not in TYPES:
        problems.append(f"{where}: type must be one of {sorted(TYPES)}")
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        problems.append(f"{where}: an object must say additionalProperties: false")
    for name, sub in (schema.get("properties") or {}).items():
        problems += schema_problems(sub, f"{where}.properties.{name}")
    if "items" in schema:
        problems += schema_problems(schema["items"], f"{where}.items")
    for req in schema.get("required", []):
        if req not in (schema.get("properties") or {}):
            problems.append(f"{where}: required {req!r} is not a property")
    return problems


def validate(value: Any, schema: dict[str, Any], where: str = "arguments") -> list[str]:
    """The ways ``value`` breaks ``schema`` (empty when valid), each as ``where.path: message``."""
    errors = _validator(json.dumps(schema, sort_keys=True)).iter_errors(value)
    return [f"{where}{_path(e.absolute_path)}: {e.message}"
            for e in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])]


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    """One validator per distinct schema (tool calls repeat the same few schemas)."""
    return Draft202012Validator(json.loads(schema_json))


def _path(parts: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
