"""The installed distributions of a Python agent program's interpreter, so that a framework's
upgrade shows in the run's manifest and invalidates a smoke test like a changed file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from gate.config.schema import AgentProgram

PYTHON = re.compile(r"python(\d+(\.\d+)?)?(\.exe)?")
LIST_CODE = ("import importlib.metadata as m, json; print(json.dumps(sorted({"
             "d.metadata['Name'].lower() + '==' + d.version for d in m.distributions() "
             "if d.metadata['Name']})))")
TIMEOUT_S = 60.0


def interpreter(program: AgentProgram, root: Path) -> str | None:
    """The program's Python interpreter when its command starts with one, else None."""
    first = program.command[0]
    if not PYTHON.fullmatch(Path(first).name):
        return None
    if "/" in first:
        path = Path(first) if Path(first).is_absolute() else root / first
        return str(path) if path.is_file() else None
    return shutil.which(first)


def python_distributions(program: AgentProgram, root: Path) -> list[str] | None:
    """``name==version`` of every distribution the interpreter sees, sorted; None when the
    program is not Python or the list cannot be taken (a problem ``gate validate`` reports)."""
    python = interpreter(program, root)
    if python is None:
        return None
    try:
        out = subprocess.run([python, "-c", LIST_CODE], cwd=root, capture_output=True,
                             text=True, timeout=TIMEOUT_S, check=True)
        listed = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return [str(d) for d in listed] if isinstance(listed, list) else None
