"""A small validator for the JSON-Schema subset tool definitions may use.

Supported keywords: type (object, string, integer, number, boolean, array), properties,
required, enum, items, additionalProperties (false only), description, minimum, maximum,
minLength. ``unsupported_keywords`` lets ``gate validate`` reject a tool file that uses
anything else, so a schema is never silently half-checked.
"""

from __future__ import annotations

from typing import Any

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
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
}


def unsupported_keywords(schema: Any, where: str = "parameters") -> list[str]:
    """Problems with the schema itself (unsupported keywords, unknown types)."""
    if not isinstance(schema, dict):
        return [f"{where}: a schema must be a mapping"]
    problems = [f"{where}: unsupported keyword {k!r}" for k in schema if k not in SUPPORTED]
    kind = schema.get("type")
    if kind not in _TYPES:
        problems.append(f"{where}: type must be one of {sorted(_TYPES)}")
    if schema.get("additionalProperties", False) is not False:
        problems.append(f"{where}: additionalProperties may only be false")
    for name, sub in (schema.get("properties") or {}).items():
        problems += unsupported_keywords(sub, f"{where}.properties.{name}")
    if "items" in schema:
        problems += unsupported_keywords(schema["items"], f"{where}.items")
    for req in schema.get("required", []):
        if req not in (schema.get("properties") or {}):
            problems.append(f"{where}: required {req!r} is not a property")
    return problems


def validate(value: Any, schema: dict[str, Any], where: str = "arguments") -> list[str]:
    """Return the ways ``value`` breaks ``schema`` (empty when valid)."""
    kind = schema.get("type", "object")
    if not _is_type(value, kind):
        return [f"{where}: expected {kind}, got {type(value).__name__}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if kind in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > maximum {schema['maximum']}")
    if kind == "string" and len(value) < schema.get("minLength", 0):
        errors.append(f"{where}: shorter than {schema['minLength']}")
    if kind == "array" and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{where}[{i}]")
    if kind == "object":
        errors += _validate_object(value, schema, where)
    return errors


def _validate_object(value: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    props: dict[str, Any] = schema.get("properties") or {}
    errors = [f"{where}: missing required {k!r}"
              for k in schema.get("required", []) if k not in value]
    for key, item in value.items():
        if key not in props:
            errors.append(f"{where}: unexpected property {key!r}")
        else:
            errors += validate(item, props[key], f"{where}.{key}")
    return errors


def _is_type(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, _TYPES.get(kind, ()))
