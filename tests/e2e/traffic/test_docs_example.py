"""docs/traffic.md's worked example runs as written: the commands between its markers, in a
shell, from a copy of the repository's examples, with the exit codes the page states, and
the import prints the summary the page shows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from paths import REPO

DOC = (REPO / "docs" / "traffic.md").read_text(encoding="utf-8")


def commands() -> list[tuple[str, int]]:
    block = DOC.split("<!-- worked-example:start -->")[1].split("<!-- worked-example:end -->")[0]
    lines = [ln for ln in block.splitlines() if ln.strip() and not ln.startswith("```")]
    out = []
    for ln in lines:
        m = re.search(r"#\s*exit (\d+)\s*$", ln)
        out.append((ln.split("#")[0].strip(), int(m.group(1)) if m else 0))
    return out


def shown_summary() -> str:
    after = DOC.split("prints its coverage summary:")[1]
    return after.split("```")[1].strip("\n")


@pytest.mark.slow
def test_the_worked_example_runs_as_written(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples" / "traffic", tmp_path / "examples" / "traffic")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                 f"{os.environ.get('PATH', '')}"}
    cwd = tmp_path
    steps = commands()
    assert steps[0][0].split()[:2] == ["gate", "import-traces"]
    assert steps[-1] == (steps[-1][0], 1)  # the sweep finds the regression
    for command, want in steps:
        if command.startswith("cd "):
            cwd = cwd / command[3:].strip()
            continue
        done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == want, (command, done.stdout[-2000:], done.stderr[-2000:])
        if "import-traces" in command:
            assert done.stdout.strip("\n") == shown_summary()
