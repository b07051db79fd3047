"""Hostile YAML: alias bombs, deep nesting, huge files and node floods are refused, naming the
file and line, before anything big is constructed (exit 4 from `gate validate`:
tests/e2e/project/test_yaml_limits_cli.py)."""

from __future__ import annotations

import base64
import re
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hostile_corpus import billion_laughs

from gate.config.yamlio import LIMITS, Limits, parse_yaml
from gate.errors import ConfigError


@pytest.mark.parametrize(("text", "line", "what"), [
    # 100 flow levels: below any YAML parser's own bound, above gate's (64): gate's words.
    ("a: " + "[" * 100 + "]" * 100 + "\n", 1, "levels of nesting"),
    # 5000 flow levels: the parser itself may stop first (PyYAML >= 6.0.4 does), in its own
    # words; the contract is only that the file is refused at its file and line.
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", 1, None),
    ("".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "v\n", 64,
     "levels of nesting"),
    ("a:\n" + "".join(f"- {i}\n" for i in range(LIMITS.max_nodes + 10)), LIMITS.max_nodes - 1,
     "nodes"),
    ("a: " + "x" * (LIMITS.max_bytes + 1) + "\n", 1, "bytes"),
    ("b: 1\n" * 3 + "a: &x [1, *x]\n", 4, "refers to a node that contains it"),
])
def test_each_limit_names_file_and_line(text: str, line: int, what: str | None) -> None:
    with pytest.raises(ConfigError) as err:
        parse_yaml(text, "hostile.yaml")
    (problem,) = err.value.problems
    assert (problem.path, problem.line) == ("hostile.yaml", line)
    if what is not None:  # gate's own limit: gate's own words
        assert what in problem.message


def test_many_aliases_are_refused() -> None:
    text = "a: &a 1\nb: [" + ",".join(["*a"] * (LIMITS.max_aliases + 1)) + "]\n"
    with pytest.raises(ConfigError, match="aliases"):
        parse_yaml(text, "x.yaml")


def test_limits_are_the_boundary_not_below_it() -> None:
    """Exactly at each limit passes; one more fails (the limits are not off by one)."""
    tight = Limits(max_bytes=200, max_nodes=7, max_aliases=2, max_depth=3, max_expanded=13)
    ok = "a: &x [1, 2]\nb: *x\nc: *x\n"  # map, 3 keys, a list of 2: 7 nodes, 2 aliases
    assert parse_yaml(ok, "ok.yaml", tight).data["c"] == [1, 2]  # expanded: 1 + 3 + 3 * 3 = 13
    for smaller in (Limits(max_nodes=6), Limits(max_expanded=12), Limits(max_bytes=len(ok) - 1)):
        with pytest.raises(ConfigError):
            parse_yaml(ok, "x.yaml", smaller)
    with pytest.raises(ConfigError, match="aliases"):
        parse_yaml("a: &x [1, 2]\nb: [*x, *x, *x]\n", "x.yaml", tight)
    with pytest.raises(ConfigError, match="nesting"):
        parse_yaml("a: [[1]]\n", "x.yaml", tight)
    assert parse_yaml("a: [1]\n", "x.yaml", tight).data == {"a": [1]}  # map, list, scalar


def test_the_guard_reads_the_pr_registry_through_the_same_bounded_loader() -> None:
    from gate.github.guard import Blocked, registry_at

    content = base64.b64encode((billion_laughs() + "models: []\n").encode()).decode()
    item = SimpleNamespace(type="file", encoding="base64", content=content)
    repo = SimpleNamespace(get_contents=lambda path, ref: item)
    with pytest.raises(Blocked) as err:
        registry_at(repo, "models.yaml", "f" * 40, "head ffffff")
    message = str(err.value)
    assert "models.yaml" in message
    assert re.search(r"(:|line )5\b", message), message  # the line the expansion passes the limit
    assert "aliases expand" in message


def test_the_guard_reads_the_pr_gate_yaml_through_the_same_bounded_loader() -> None:
    from gate.github.guard import Blocked, registry_path_at

    # 100 levels: every YAML parser reads it; only gate's bound (64) refuses it.
    content = base64.b64encode(("a: " + "[" * 100 + "]" * 100 + "\n").encode()).decode()
    item = SimpleNamespace(type="file", encoding="base64", content=content)
    repo = SimpleNamespace(get_contents=lambda path, ref: item)
    with pytest.raises(Blocked) as err:
        registry_path_at(repo, "gate.yaml", "f" * 40, "head ffffff")
    assert "gate.yaml" in str(err.value)
    assert "levels of nesting" in str(err.value)


def test_the_bomb_is_refused_before_any_value_is_constructed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counts the nodes the loader constructs: bounded by what the file holds, not by 9**9."""
    constructed = {"n": 0}
    original = yaml.constructor.SafeConstructor.construct_object

    def counting(self: Any, node: Any, deep: bool = False) -> Any:
        constructed["n"] += 1
        return original(self, node, deep)

    monkeypatch.setattr(yaml.constructor.SafeConstructor, "construct_object", counting)
    with pytest.raises(ConfigError):
        parse_yaml(billion_laughs(), "models.yaml")
    assert constructed["n"] == 0
    # a legitimate file with aliases is still read, and constructs about as many as it holds
    doc = parse_yaml("a: &a [1, 2]\nb: *a\nc: *a\n", "ok.yaml")
    assert doc.data == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}
    assert 0 < constructed["n"] < 20
