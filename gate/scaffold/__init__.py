"""``gate init [DIR]``: scaffold a repository that works at once.

The template (``gate/scaffold/template/``, shipped as package data) holds gate.yaml, models.yaml,
the workflows, CODEOWNERS, and one small example environment (helpdesk ticket triage) with its
tools, tasks, fixtures and prompt. ``dot-github`` in the template is written as ``.github``.
Nothing is ever overwritten: when any target file exists, nothing is written at all (exit 4).
"""

from __future__ import annotations

import argparse
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from gate.errors import ConfigError, Problem

TEMPLATE = "template"
_RENAMES = {"dot-github": ".github"}
_SKIP = {"__pycache__"}


def template_files() -> dict[str, bytes]:
    """Relative target path -> content, for every file of the template."""
    out: dict[str, bytes] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name in _SKIP or child.name.endswith(".pyc"):
                continue
            name = _RENAMES.get(child.name, child.name) if not prefix else child.name
            rel = f"{prefix}{name}"
            if child.is_dir():
                walk(child, rel + "/")
            else:
                out[rel] = child.read_bytes()

    walk(files(__name__).joinpath(TEMPLATE), "")
    return out


def scaffold(target: Path) -> list[str]:
    """Write the template into ``target``. Raises ConfigError naming every file that exists."""
    content = template_files()
    existing = [rel for rel in content if (target / rel).exists() or (target / rel).is_symlink()]
    if existing:
        raise ConfigError([Problem((target / rel).as_posix(), None,
                                   "already exists; gate init never overwrites a file")
                           for rel in existing])
    if target.exists() and not target.is_dir():
        raise ConfigError.one(target.as_posix(), None, "not a directory")
    for rel, data in content.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as fh:  # exclusive: never replaces a file created meanwhile
            fh.write(data)
    return sorted(content)


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="scaffold a working gate repository (never overwrites)")
    p.add_argument("dir", nargs="?", default=".", type=Path,
                   help="directory to write into (default: the current one)")
    p.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    target: Path = args.dir
    written = scaffold(target)
    print(f"gate init: wrote {len(written)} files into {target.as_posix()}")
    print(f"next: cd {target.as_posix()} && gate validate && gate smoke --out runs/smoke")
    print("then: replace the placeholder owner in .github/CODEOWNERS")
    return 0
