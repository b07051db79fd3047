"""mcp, uvicorn and starlette are the optional extra ``gate[agents]``: the built-in loop runs
without them, and a configuration with an agent program says how to install them (exit 4)
before anything is spent."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from agent_support import REPO, make_project, program

from gate.agent.program import run_program_trial
from gate.cli import main
from gate.errors import ConfigError
from gate.project.agent_check import AGENTS_EXTRA

HINT = "pip install 'gate[agents]'"

WITHOUT_EXTRA = textwrap.dedent("""
    import sys
    BLOCKED = ("mcp", "mcp_types", "starlette", "uvicorn", "httptools")
    for name in BLOCKED:
        sys.modules[name] = None  # `import name` raises ModuleNotFoundError, as if not installed
    from gate.cli import main
    code = main(sys.argv[1:])
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m])
    print("LOADED", loaded, "EXIT", code)
""")


def _without_extra(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRA, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=False)


def _block(monkeypatch: pytest.MonkeyPatch, name: str = "uvicorn") -> None:
    monkeypatch.setitem(sys.modules, name, None)  # find_spec and import: not installed


@pytest.mark.slow
def test_the_built_in_loop_runs_without_the_extra(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", tasks=(
        "incident/incident-easy-01-cache-crashed.yaml",))
    out = tmp_path / "run"
    done = _without_extra("run", "--config", str(cfg), "--model", "mock/expert",
                          "--out", str(out), cwd=REPO)
    assert "LOADED [] EXIT 0" in done.stdout, done.stdout + done.stderr
    assert (out / "results.json").is_file()


def test_validate_names_the_extra_when_a_program_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_project(tmp_path / "p", agent=program("-c", "pass"))
    assert main(["validate", "--config", str(cfg)]) == 0
    _block(monkeypatch)
    assert main(["validate", "--config", str(cfg)]) == 4
    err = capsys.readouterr().err
    assert HINT in err
    assert "uvicorn" in err


def test_a_program_trial_called_from_the_api_names_the_extra(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    _block(monkeypatch, "mcp")
    call = run_program_trial(program("-c", "pass"), None, None, None,  # type: ignore[arg-type]
                             lambda step, attempt: None, root=Path("."))
    with pytest.raises(ConfigError, match=r"pip install 'gate\[agents\]'"):
        asyncio.run(call)


SERVING = {"gate/agent/serve.py", "gate/agent/endpoint.py", "gate/agent/mcp_tools.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    found |= {n.module for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    return {name.split(".")[0] for name in found}


def test_only_the_trial_server_imports_the_extra() -> None:
    importers = {str(path.relative_to(REPO)) for path in (REPO / "gate").rglob("*.py")
                 if _imports(path) & set(AGENTS_EXTRA)}
    assert importers == SERVING
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    core, extras = pyproject.split("[project.optional-dependencies]", 1)
    agents = extras.split("\nagents = [", 1)[1].split("]", 1)[0]
    for dist in ("mcp", "uvicorn", "starlette", "httptools"):
        assert f'"{dist}>=' in agents
        assert f'"{dist}>=' not in core
