"""What agent frameworks send that a simulated model must take as a real one does: tool names
with a prefix or suffix the program added, JSON schemas to answer (``response_format``, an output
tool's parameters), and which reference calls are independent reads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gate.config.schema import ToolCall


@dataclass(frozen=True)
class Naming:
    """The prefix and suffix a program added to every tool name (``gate_check_status``)."""

    prefix: str = ""
    suffix: str = ""
    matched: int = 0  # offered tools that are the environment's, so named

    def outer(self, name: str) -> str:
        return f"{self.prefix}{name}{self.suffix}"

    def inner(self, name: str) -> str:
        if name.startswith(self.prefix) and name.endswith(self.suffix) \
                and len(name) > len(self.prefix) + len(self.suffix):
            return name[len(self.prefix): len(name) - len(self.suffix)]
        return name


def naming(offered: list[str], schemas: dict[str, Any]) -> Naming:
    """The consistent prefix/suffix that maps the most offered names to the environment's
    tools (none when the bare names match as many)."""
    counts: dict[tuple[str, str], int] = {}
    for name in offered:
        for tool in schemas:
            at = name.find(tool)
            while at >= 0:
                key = (name[:at], name[at + len(tool):])
                counts[key] = counts.get(key, 0) + 1
                at = name.find(tool, at + 1)
    if not counts:
        return Naming()
    best = max(counts.values())
    if counts.get(("", "")) == best:
        return Naming(matched=best)
    prefix, suffix = min(k for k, v in counts.items() if v == best)
    return Naming(prefix, suffix, best)


OUTPUT_TOOL = re.compile(r"final|result|output|answer|respond|submit", re.IGNORECASE)
"""How a framework's output tool is recognised among the offered tools that are not the
environment's (Pydantic AI's ``final_result``, a ``submit_answer`` tool...)."""


def schema_value(schema: dict[str, Any], text: str, root: dict[str, Any] | None = None,
                 depth: int = 0) -> Any:
    """A value valid against a JSON schema (``$ref``/``$defs``, ``anyOf``, objects, arrays,
    scalars), with ``text`` for its strings: the answer a simulated model gives."""
    root = root or schema
    if depth > 20:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return schema_value(target, text, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or [] if o.get("type") != "null"]
        if options:
            return schema_value(options[0], text, root, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return _typed_value(schema, str(kind), text, root, depth)


def _typed_value(schema: dict[str, Any], kind: str, text: str, root: dict[str, Any],
                 depth: int) -> Any:
    if kind == "object":
        props: dict[str, Any] = schema.get("properties") or {}
        return {k: schema_value(v, text, root, depth + 1) for k, v in props.items()}
    if kind == "array":
        item = schema_value(schema.get("items") or {}, text, root, depth + 1)
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + 1 if "exclusiveMinimum" in schema and "minimum" not in schema else low
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    limit = schema.get("maxLength")
    return text[:limit] if isinstance(limit, int) else text


def is_read(call: ToolCall, evidence: list[ToolCall]) -> bool:
    return any(ev.tool == call.tool and all(call.args.get(k) == v for k, v in ev.args.items())
               for ev in evidence)


def tool_name(tool: dict[str, Any]) -> str:
    return str((tool.get("function") or {}).get("name") or tool.get("name") or "")


def tool_parameters(tool: dict[str, Any]) -> dict[str, Any]:
    params = (tool.get("function") or {}).get("parameters") or tool.get("parameters") or {}
    return params if isinstance(params, dict) else {}
