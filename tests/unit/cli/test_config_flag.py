"""``--config`` is declared once (``gate.cliargs.CONFIG``, a parent parser) and every
subcommand that reads a project takes it, with the same default."""

from __future__ import annotations

import argparse

import pytest
from paths import PACKAGE

from gate.cli import build_parser

READS_A_PROJECT = ("validate", "run", "smoke", "sweep", "report", "verify", "export-otel",
                   "changes", "comment", "guard", "mock-server")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_config_is_declared_in_one_place() -> None:
    places = [f"{p.relative_to(PACKAGE)}:{n}" for p in sorted(PACKAGE.rglob("*.py"))
              for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
              if '"--config"' in line]
    assert [p.split(":")[0] for p in places] == ["cliargs.py"], places


@pytest.mark.parametrize("name", READS_A_PROJECT)
def test_each_project_command_takes_config(name: str) -> None:
    parser = _subcommands()[name]
    assert parser.get_default("config") == "gate.yaml"
    help_text = parser.format_help()
    assert "--config PATH" in help_text
