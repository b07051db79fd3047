"""Strict YAML reading: safe constructors only, duplicate keys rejected, lines remembered.

``load_yaml`` returns the data together with a map from each key path to the line it sits
on, so that a pydantic error at ``("tasks", 3, "id")`` can be reported as ``file:line``.

Every file may come from an untrusted pull request, so parsing is bounded (``Limits``): the
size in bytes, the number of nodes composed, the number of aliases, the nesting depth, and the
size the aliases expand to. A billion-laughs block is refused after composing a few dozen
nodes and before constructing any value: aliases are references in the composed graph, and
its expanded size is counted (each distinct node once) before ``_walk`` copies anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from gate.errors import ConfigError, Problem

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class YamlDoc:
    """Parsed YAML with the line (1-based) of every mapping key and sequence item."""

    path: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """Line of the longest prefix of ``loc`` that is known (the document start if none)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


@dataclass(frozen=True)
class Limits:
    """Bounds on one YAML document (each far above what a gate file needs)."""

    max_bytes: int = 1024 * 1024
    max_nodes: int = 10_000  # nodes composed (scalars, sequences, mappings)
    max_aliases: int = 1_000  # ``*name`` references
    max_depth: int = 64  # nesting of sequences and mappings
    max_expanded: int = 50_000  # nodes the document has once every alias is expanded


LIMITS = Limits()


def _parser_class() -> Any:
    """libyaml's parser (scanning in C: a hostile file costs milliseconds), else PyYAML's."""
    try:
        from yaml._yaml import CParser
    except ImportError:  # pragma: no cover - PyYAML built without libyaml
        from yaml.parser import Parser
        from yaml.reader import Reader
        from yaml.scanner import Scanner

        class PyParser(Reader, Scanner, Parser):
            def __init__(self, text: str) -> None:
                Reader.__init__(self, text)
                Scanner.__init__(self)
                Parser.__init__(self)

        return PyParser
    return CParser


_Parser: Any = _parser_class()


class _Loader(Composer, _Parser, SafeConstructor, Resolver):  # type: ignore[misc]
    """Safe constructors only (no tag can build a Python object); counts what it composes.

    The composer is PyYAML's Python one (before the parser in the MRO), so that every node
    passes through ``compose_node`` and is counted."""

    def __init__(self, text: str, path: str, limits: Limits) -> None:
        _Parser.__init__(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.gate_path = path
        self.gate_limits = limits
        self.gate_nodes = 0
        self.gate_aliases = 0
        self.gate_depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()
        limits = self.gate_limits
        if isinstance(event, yaml.AliasEvent):
            self.gate_aliases += 1
            self._bound(event, self.gate_aliases, limits.max_aliases, "aliases")
        else:
            self.gate_nodes += 1
            self._bound(event, self.gate_nodes, limits.max_nodes, "nodes")
        self.gate_depth += 1
        try:
            self._bound(event, self.gate_depth, limits.max_depth, "levels of nesting")
            node = super().compose_node(parent, index)
        finally:
            self.gate_depth -= 1
        return node

    def _bound(self, event: Any, count: int, limit: int, what: str) -> None:
        if count > limit:
            raise ConfigError.one(self.gate_path, event.start_mark.line + 1,
                                  f"more than {limit} {what}: refused (YAML limits)")


def _check_expansion(root: yaml.Node, path: str, limit: int) -> None:
    """Refuse a document whose aliases expand past ``limit`` nodes (or refer to themselves),
    before constructing anything.

    The expanded size of each distinct node is computed once (memoised by identity), so the
    cost is the size of the composed graph, not of its expansion."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # iterative depth-first: children before parents
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            if total > limit:
                raise ConfigError.one(path, node.start_mark.line + 1,
                                      f"aliases expand to more than {limit} nodes: refused "
                                      "(YAML limits)")
            sizes[key] = total
            continue
        if key in open_nodes:
            raise ConfigError.one(path, node.start_mark.line + 1,
                                  "an alias refers to a node that contains it: refused")
        if key in sizes:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


def _walk(loader: _Loader, node: yaml.Node, loc: Loc, doc: YamlDoc) -> Any:
    doc.lines.setdefault(loc, node.start_mark.line + 1)
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
        raise ConfigError.one(doc.path, node.start_mark.line + 1, f"unsupported tag {node.tag}")
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                raise ConfigError.one(doc.path, key_node.start_mark.line + 1,
                                      f"keys must be strings or integers, not {key!r}")
            if key in out:
                raise ConfigError.one(
                    doc.path,
                    key_node.start_mark.line + 1,
                    f"duplicate key {key!r} (first at line {doc.lines[(*loc, key)]})",
                )
            doc.lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _walk(loader, value_node, (*loc, key), doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(loader, item, (*loc, i), doc) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _check_size(text: str, path: str, limit: int) -> None:
    if len(text) > limit:  # at least one byte per character: too big, no need to encode it
        line = text.count("\n", 0, limit) + 1
        raise ConfigError.one(path, line, f"file is more than the {limit} bytes allowed: "
                              "refused (YAML limits)")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        line = text.encode("utf-8", "surrogatepass")[:limit].count(b"\n") + 1
        raise ConfigError.one(path, line, f"file is {size} bytes, more than the {limit} allowed: "
                              "refused (YAML limits)")


def parse_yaml(text: str, path: str, limits: Limits = LIMITS) -> YamlDoc:
    """Parse one YAML document strictly. Raises ConfigError naming the file and line."""
    _check_size(text, path, limits.max_bytes)
    doc = YamlDoc(path=path, data=None)
    loader = _Loader(text, path, limits)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, path, limits.max_expanded)
            doc.data = _walk(loader, node, (), doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError.one(path, line, f"YAML syntax error: {message}") from None
    except yaml.YAMLError as exc:
        raise ConfigError.one(path, None, f"YAML error: {exc}") from None
    finally:
        loader.dispose()
    return doc


def load_yaml(path: Path, display: str | None = None) -> YamlDoc:
    name = display or str(path)
    try:
        with path.open("rb") as fh:  # never more than the limit (and one byte to know)
            raw = fh.read(LIMITS.max_bytes + 1)
        if len(raw) > LIMITS.max_bytes:
            line = raw[:LIMITS.max_bytes].count(b"\n") + 1
            raise ConfigError.one(name, line, f"file is more than the {LIMITS.max_bytes} bytes "
                                  "allowed: refused (YAML limits)")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError.one(name, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.one(name, None, f"cannot read: {exc}") from None
    return parse_yaml(text, name)


# The refusals every gate file can meet, in gate's words (pydantic's wording may change with
# its releases; these do not). Other kinds keep the validator's own message.
_GATE_WORDS = {
    "extra_forbidden": "unknown field: not part of gate's schema (a typo?)",
    "missing": "required field is missing",
}


def error_message(err: Mapping[str, Any]) -> str:
    """One pydantic error's message: gate's words for the common kinds, else pydantic's."""
    return _GATE_WORDS.get(str(err.get("type")), str(err.get("msg")))


def validation_problems(doc: YamlDoc, exc: ValidationError, prefix: Loc = ()) -> list[Problem]:
    """Turn a pydantic ValidationError into ``path:line: message`` problems."""
    problems = []
    for err in exc.errors():
        at: Loc = (err.get("ctx") or {}).get("at", ())  # a model validator's own location
        loc: Loc = (*prefix, *err["loc"], *at)
        where = ".".join(str(p) for p in loc) or "(document)"
        problems.append(Problem(doc.path, doc.line_of(loc), f"{where}: {error_message(err)}"))
    return problems


def model_from_doc(model: type[M], doc: YamlDoc) -> M:
    """Validate a YAML document against a strict model; errors name file and line."""
    if doc.data is None:
        raise ConfigError.one(doc.path, None, "empty document")
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(doc, exc)) from None
