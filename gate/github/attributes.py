""".gitattributes that change the bytes a checkout writes, as the adoption guard sees them.

The guard reads files as blobs (the contents API); gate reads them from a checkout. Git turns
one into the other through attributes: ``working-tree-encoding`` re-encodes (``"a¥"`` in
Shift-JIS checks out as a backslash, so a quoted YAML string can end early), ``filter`` runs a
smudge program, ``ident`` expands ``$Id$``, ``eol``/``text``/``crlf`` convert line endings. So
any of them applying to gate.yaml, the registry or CODEOWNERS, at base or at head, differently,
is a change that needs a code owner; and ``gate`` itself refuses a checkout that differs from
its committed bytes (``gate.gitref.checkout_differs``).

Patterns are matched by ``pathspec`` (gitignore's wildmatch, which gitattributes shares).
Lines git ignores (negative patterns) are ignored; a quoted pattern (git's C-style quoting) is
taken to match every path (fail closed). Macro attributes (``[attr]name ...``, and the built-in
``binary``) are expanded.
"""

from __future__ import annotations

import posixpath
import re

import pathspec

ATTRIBUTES = ("working-tree-encoding", "filter", "eol", "ident", "text", "crlf")
BUILTIN_MACROS = {"binary": ["-diff", "-merge", "-text"]}


def attribute_files(paths: list[str]) -> list[str]:
    """Every .gitattributes that can apply to ``paths``: the root's and each ancestor's."""
    out: list[str] = []
    for path in paths:
        parts = path.split("/")[:-1]
        for i in range(len(parts) + 1):
            candidate = posixpath.join(*parts[:i], ".gitattributes") if i else ".gitattributes"
            if candidate not in out:
                out.append(candidate)
    return out


def _macros(texts: dict[str, str]) -> dict[str, list[str]]:
    macros = {k: list(v) for k, v in BUILTIN_MACROS.items()}
    for line in texts.get(".gitattributes", "").split("\n"):
        tokens = line.split()
        if tokens and tokens[0].startswith("[attr]"):
            macros[tokens[0][len("[attr]"):]] = tokens[1:]
    return macros


def _name(token: str) -> str:
    return re.split(r"=", token.lstrip("-!"), maxsplit=1)[0]


def _expand(tokens: list[str], macros: dict[str, list[str]], depth: int = 0) -> list[str]:
    out: list[str] = []
    for token in tokens:
        name = _name(token)
        if name in macros and depth < 8 and not token.startswith(("-", "!")):
            out.extend(_expand(macros[name], macros, depth + 1))
        out.append(token)
    return out


def _matches(pattern: str, relative: str) -> bool:
    if pattern.startswith('"'):
        return True  # quoted: not decoded here, so taken to match (fail closed)
    spec = pathspec.GitIgnoreSpec.from_lines([pattern])
    return spec.match_file(relative)


def applying(texts: dict[str, str], path: str) -> dict[str, str]:
    """The byte-changing attributes that apply to ``path`` (name -> last setting), given the
    text of each .gitattributes file by its repository path. Deeper files win, later lines win."""
    macros = _macros(texts)
    found: dict[str, str] = {}
    for file in attribute_files([path]):
        text = texts.get(file)
        if text is None:
            continue
        directory = posixpath.dirname(file)
        relative = path[len(directory) + 1:] if directory else path
        for line in text.split("\n"):
            tokens = line.split()
            if not tokens or tokens[0].startswith(("#", "[attr]", "!")):
                continue
            if not _matches(tokens[0], relative):
                continue
            for token in _expand(tokens[1:], macros):
                if _name(token) in ATTRIBUTES:
                    found[_name(token)] = token
    return found
