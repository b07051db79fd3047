from __future__ import annotations

import pytest

from gate.config.schema import Registry
from gate.config.yamlio import model_from_doc, parse_yaml
from gate.errors import ConfigError


def test_duplicate_key_names_file_and_both_lines() -> None:
    text = "models:\n  - id: a\n    provider: mock\n    id: b\n"
    with pytest.raises(ConfigError) as err:
        parse_yaml(text, "models.yaml")
    (problem,) = err.value.problems
    assert problem.path == "models.yaml"
    assert problem.line == 4
    assert "duplicate key 'id'" in problem.message
    assert "line 2" in problem.message


def test_syntax_error_has_line() -> None:
    with pytest.raises(ConfigError) as err:
        parse_yaml("a: [1, 2\nb: 3\n", "x.yaml")
    assert err.value.problems[0].line is not None
    assert "YAML syntax error" in err.value.problems[0].message


def test_python_tags_are_refused() -> None:
    with pytest.raises(ConfigError):
        parse_yaml("a: !!python/object/apply:os.system ['true']\n", "evil.yaml")


def test_validation_error_points_at_the_offending_line() -> None:
    text = (
        "models:\n"
        "  - id: a\n"
        "    provider: mock\n"
        "    evaluation_status: adopted\n"
        "  - id: b\n"
        "    provider: mock\n"
        "    evaluation_status: shipped\n"
        "    colour: red\n"
    )
    with pytest.raises(ConfigError) as err:
        model_from_doc(Registry, parse_yaml(text, "models.yaml"))
    lines = {p.line for p in err.value.problems}
    assert lines == {7, 8}
    assert any("colour" in p.message for p in err.value.problems)


def test_merge_keys_and_anchors_still_work() -> None:
    doc = parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", "m.yaml")
    assert doc.data["other"] == {"x": 1, "y": 2}
