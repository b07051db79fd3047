"""Checks of gate.yaml's ``agent`` and ``agent_overrides`` that need more than the schema: every
override names a known environment, every program's executable can be found, and the packages
that serve a program's trial (the ``agents`` extra) are installed."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterable
from pathlib import Path

from gate.config.schema import AgentProgram, GateConfig

Loc = tuple[str | int, ...]

AGENTS_EXTRA = ("mcp", "mcp_types", "starlette", "uvicorn", "httptools")
"""What a program's trial is served with (gate.agent.serve): the optional extra ``agents``."""
AGENTS_HINT = "pip install 'gate[agents]'"


def missing_agents_extra() -> list[str]:
    """The modules of the ``agents`` extra that cannot be imported (none when it is installed)."""
    return [name for name in AGENTS_EXTRA if importlib.util.find_spec(name) is None]


def agents_extra_problem() -> str | None:
    """Why agent programs cannot run here (None when they can)."""
    missing = missing_agents_extra()
    if not missing:
        return None
    return (f"an agent program needs gate's optional extra 'agents' ({', '.join(missing)} "
            f"not installed): {AGENTS_HINT}")


def agent_problems(config: GateConfig, root: Path, environments: Iterable[str]
                   ) -> list[tuple[Loc, str]]:
    """(location in gate.yaml, message) for each problem."""
    known = sorted(environments)
    problems: list[tuple[Loc, str]] = []
    for name in config.agent_overrides:
        if name not in known:
            problems.append((("agent_overrides", name),
                             f"agent_overrides: unknown environment {name!r}; known: {known}"))
    keys = {p.api_key_env for p in config.providers.values() if p.api_key_env}
    extra = agents_extra_problem() if programs(config) else None
    for where, program in programs(config):
        loc: Loc = tuple(where.split(".", 1)) if "." in where else (where,)
        if extra is not None:
            problems.append((loc, f"{where}: {extra}"))
        problems += _command_problems(loc, program, root)
        for i, name in enumerate(program.files):
            if not (root / name).is_file() or Path(name).is_absolute():
                problems.append(((*loc, "files", i), f"{where}.files[{i}]: {name!r} is not a "
                                 "file of the repository"))
        for i, name in enumerate(program.pass_env):
            if name in keys:
                problems.append(((*loc, "pass_env", i), f"{where}.pass_env[{i}]: {name!r} is a "
                                 "provider's api_key_env: the program gets a per-trial token"))
    return problems


def programs(config: GateConfig) -> list[tuple[str, AgentProgram]]:
    """Every agent program of the configuration with where it is declared (``agent``,
    ``agent_overrides.ENV``)."""
    found = [("agent", config.agent)]
    found += [(f"agent_overrides.{k}", v) for k, v in config.agent_overrides.items()]
    return [(where, p) for where, p in found if isinstance(p, AgentProgram)]


SCRIPT_SUFFIXES = frozenset({".py", ".pyz", ".sh", ".bash", ".js", ".mjs", ".cjs", ".ts",
                             ".rb", ".pl", ".php", ".jar", ".lua", ".r", ".R"})
"""An argument ending so names a file even without a ``/`` (``python agent.py``)."""


CODE_FLAGS = frozenset({"-c", "-m", "-e", "--eval"})


def _command_problems(loc: Loc, program: AgentProgram, root: Path) -> list[tuple[Loc, str]]:
    """The executable, then every argument that names a file of the repository."""
    where = f"{'.'.join(map(str, loc))}.command"
    out: list[tuple[Loc, str]] = []
    if not _findable(program.command[0], root):
        out.append(((*loc, "command"), f"{where}: {program.command[0]!r} not found (relative "
                    "paths are taken from the repository root, bare names from PATH)"))
    argv = program.command
    for i, arg in enumerate(argv[1:], start=1):
        if argv[i - 1] in CODE_FLAGS:
            continue  # the code or module after -c/-m/-e, not a file
        if _names_file(arg) and not (root / arg).is_file():
            out.append(((*loc, "command", i), f"{where}[{i}]: {arg!r} is not a file of the "
                        "repository (the program runs in the repository root)"))
    return out


def _names_file(arg: str) -> bool:
    if arg.startswith("-") or Path(arg).is_absolute() or "=" in arg or "://" in arg:
        return False
    return "/" in arg or Path(arg).suffix in SCRIPT_SUFFIXES


def program_files(config: GateConfig, root: Path) -> list[str]:
    """Files of the repository named in an agent command (hashed into the run's manifest, so
    ``--resume`` and the smoke-before-spend check see a changed program)."""
    found: set[str] = set()
    for _, choice in programs(config):
        for arg in [*choice.command, *choice.files]:
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
