"""Strict YAML reading: safe constructors only, duplicate keys rejected, lines remembered.

``load_yaml`` returns the data together with a map from each key path to the line it sits
on, so that a pydantic error at ``("tasks", 3, "id")`` can be reported as ``file:line``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

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


class _Loader(yaml.SafeLoader):
    """SafeLoader: no tag can construct a Python object."""


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


def parse_yaml(text: str, path: str) -> YamlDoc:
    """Parse one YAML document strictly. Raises ConfigError naming the file and line."""
    doc = YamlDoc(path=path, data=None)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.one(name, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.one(name, None, f"cannot read: {exc}") from None
    return parse_yaml(text, name)


def validation_problems(doc: YamlDoc, exc: ValidationError, prefix: Loc = ()) -> list[Problem]:
    """Turn a pydantic ValidationError into ``path:line: message`` problems."""
    problems = []
    for err in exc.errors():
        at: Loc = (err.get("ctx") or {}).get("at", ())  # a model validator's own location
        loc: Loc = (*prefix, *err["loc"], *at)
        where = ".".join(str(p) for p in loc) or "(document)"
        problems.append(Problem(doc.path, doc.line_of(loc), f"{where}: {err['msg']}"))
    return problems


def model_from_doc(model: type[M], doc: YamlDoc) -> M:
    """Validate a YAML document against a strict model; errors name file and line."""
    if doc.data is None:
        raise ConfigError.one(doc.path, None, "empty document")
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(doc, exc)) from None
