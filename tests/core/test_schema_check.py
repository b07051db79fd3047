from __future__ import annotations

from gate.project.schema_check import unsupported_keywords, validate

SCHEMA = {
    "type": "object",
    "properties": {
        "service": {"type": "string", "enum": ["web_server", "database"]},
        "lines": {"type": "integer", "minimum": 1, "maximum": 50},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["service"],
    "additionalProperties": False,
}


def test_valid_arguments_pass() -> None:
    assert validate({"service": "database", "lines": 10, "tags": ["a"]}, SCHEMA) == []


def test_each_kind_of_invalid_argument_is_reported() -> None:
    assert "missing required 'service'" in validate({}, SCHEMA)[0]
    assert "not one of" in validate({"service": "cache"}, SCHEMA)[0]
    assert "maximum" in validate({"service": "database", "lines": 99}, SCHEMA)[0]
    assert "unexpected property" in validate({"service": "database", "x": 1}, SCHEMA)[0]
    assert "expected integer" in validate({"service": "database", "lines": True}, SCHEMA)[0]
    assert "expected string" in validate({"service": "database", "tags": [1]}, SCHEMA)[0]


def test_unsupported_keywords_are_flagged() -> None:
    bad = {"type": "object", "properties": {"x": {"type": "string", "pattern": "^a"}},
           "required": ["y"], "additionalProperties": True}
    problems = unsupported_keywords(bad)
    assert any("pattern" in p for p in problems)
    assert any("required 'y'" in p for p in problems)
    assert any("additionalProperties" in p for p in problems)
    assert unsupported_keywords(SCHEMA) == []
