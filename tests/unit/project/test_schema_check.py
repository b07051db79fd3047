"""Tool arguments against a tool's schema (jsonschema underneath): each problem names where in
the arguments it is; a tool file's schema is refused when it is no JSON Schema, uses a keyword
outside gate's set, or leaves an object open."""

from __future__ import annotations

from typing import Any

import pytest

from gate.project.schema_check import schema_problems, validate

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "service": {"type": "string", "enum": ["web_server", "database"]},
        "lines": {"type": "integer", "minimum": 1, "maximum": 50},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 2}},
    },
    "required": ["service"],
    "additionalProperties": False,
}


def test_valid_arguments_pass() -> None:
    assert validate({"service": "database", "lines": 10, "tags": ["ab"]}, SCHEMA) == []


@pytest.mark.parametrize(("args", "where"), [
    ({}, "arguments: "),  # a required property missing
    ({"service": "cache"}, "arguments.service: "),  # not in the enum
    ({"service": "database", "lines": 99}, "arguments.lines: "),  # above the maximum
    ({"service": "database", "lines": 0}, "arguments.lines: "),  # below the minimum
    ({"service": "database", "lines": True}, "arguments.lines: "),  # a boolean is no integer
    ({"service": "database", "lines": 1.5}, "arguments.lines: "),
    ({"service": "database", "tags": [1]}, "arguments.tags[0]: "),
    ({"service": "database", "tags": ["a"]}, "arguments.tags[0]: "),  # shorter than minLength
    ({"service": "database", "tags": "ab"}, "arguments.tags: "),
    ({"service": "database", "x": 1}, "arguments: "),  # not declared: the object is closed
])
def test_each_invalid_argument_is_one_problem_where_it_is(args: dict[str, Any],
                                                          where: str) -> None:
    problems = validate(args, SCHEMA)
    assert len(problems) == 1, problems
    assert problems[0].startswith(where), problems


def test_problems_carry_the_callers_location() -> None:
    assert validate({"service": 3}, SCHEMA, "reference_trajectory[2].args")[0].startswith(
        "reference_trajectory[2].args.service: ")


def test_an_undeclared_property_is_refused_only_because_the_schema_says_so() -> None:
    """The closed-object rule is the schema's ``additionalProperties: false`` (required in tool
    files by ``schema_problems``), not a hidden rule of the checker."""
    open_schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert validate({"a": "x", "b": 1}, open_schema) == []
    closed = {**open_schema, "additionalProperties": False}
    assert len(validate({"a": "x", "b": 1}, closed)) == 1


def test_the_suite_schema_is_accepted() -> None:
    assert schema_problems(SCHEMA) == []


@pytest.mark.parametrize(("schema", "where"), [
    ({"type": "object", "properties": {}}, "parameters: "),
    ({"type": "object", "properties": {}, "additionalProperties": True}, "parameters: "),
    ({"type": "object", "additionalProperties": False,
      "properties": {"a": {"type": "object", "properties": {}}}}, "parameters.properties.a: "),
    ({"type": "object", "additionalProperties": False,
      "properties": {"a": {"type": "array", "items": {"type": "object"}}}},
     "parameters.properties.a.items: "),
    ({"type": "object", "additionalProperties": False,
      "properties": {"a": {"type": "string", "pattern": "^x"}}}, "parameters.properties.a: "),
    ({"type": "object", "additionalProperties": False, "properties": {}, "required": ["y"]},
     "parameters: "),
    ({"type": "object", "additionalProperties": False,
      "properties": {"a": {"type": "strng"}}}, "parameters"),  # no JSON Schema type
    ({"type": "object", "additionalProperties": False,
      "properties": {"a": {"type": "integer", "minimum": "one"}}}, "parameters"),
    ({"type": "null"}, "parameters: "),
    (["type", "object"], "parameters: "),
])
def test_a_schema_outside_the_rules_is_one_problem_where_it_is(schema: Any, where: str) -> None:
    problems = schema_problems(schema)
    assert len(problems) == 1, problems
    assert problems[0].startswith(where), problems
