"""Checks of gate.yaml's ``agent`` and ``agent_overrides`` that need more than the schema: every
override names a known environment, and every program's executable can be found."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from gate.config.schema import AgentProgram, GateConfig

Loc = tuple[str | int, ...]


def agent_problems(config: GateConfig, root: Path, environments: Iterable[str]
                   ) -> list[tuple[Loc, str]]:
    """(location in gate.yaml, message) for each problem."""
    known = sorted(environments)
    problems: list[tuple[Loc, str]] = []
    for name in config.agent_overrides:
        if name not in known:
            problems.append((("agent_overrides", name),
                             f"agent_overrides: unknown environment {name!r}; known: {known}"))
    choices: list[tuple[Loc, object]] = [(("agent",), config.agent)]
    choices += [(("agent_overrides", k), v) for k, v in config.agent_overrides.items()]
    for loc, choice in choices:
        if isinstance(choice, AgentProgram) and not _findable(choice.command[0], root):
            problems.append(((*loc, "command"), f"{'.'.join(map(str, loc))}.command: "
                             f"{choice.command[0]!r} not found (relative paths are taken from "
                             "the repository root, bare names from PATH)"))
    return problems


def program_files(config: GateConfig, root: Path) -> list[str]:
    """Files of the repository named in an agent command (hashed into the run's manifest, so
    ``--resume`` and the smoke-before-spend check see a changed program)."""
    found: set[str] = set()
    choices = [config.agent, *config.agent_overrides.values()]
    for choice in choices:
        if not isinstance(choice, AgentProgram):
            continue
        for arg in choice.command:
            if Path(arg).is_absolute() or arg.startswith("-"):
                continue
            path = (root / arg).resolve()
            if path.is_file() and path.is_relative_to(root.resolve()):
                found.add(path.relative_to(root.resolve()).as_posix())
    return sorted(found)


def _findable(program: str, root: Path) -> bool:
    if "/" in program:
        path = Path(program) if Path(program).is_absolute() else root / program
        return path.is_file()
    return shutil.which(program) is not None
