"""A team's own environment, from outside the package: declared in gate.yaml or registered as
an entry point, written only against ``gate.environments``' public API, run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from paths import REPO
from userrepo import GATE_YAML, LAMPS_ENV, build

import gate.environments
from gate.cli import main
from gate.environments.registry import BUILTIN, EnvironmentRegistry
from gate.errors import ConfigError
from gate.project.load import load_project

DECL_LINE = 3  # the line of `lamps:` under `environments:` in GATE_YAML


def run(repo: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.chdir(repo)
    return main(list(args))


def test_public_api_is_exactly_the_documented_names() -> None:
    assert sorted(gate.environments.__all__) == [
        "EnvOutcome", "Environment", "Fixture", "ToolCall", "ToolResult"]


@pytest.mark.slow  # end to end: not in the fast loop
def test_user_environment_validates_smokes_and_sweeps_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "team-repo"
    build(repo)
    assert run(repo, monkeypatch, "validate") == 0
    assert "ok: 3 tasks, 2 tools, 1 prompts" in capsys.readouterr().out
    assert run(repo, monkeypatch, "smoke", "--out", "s") == 0
    smoke = json.loads((repo / "s" / "smoke.json").read_text())
    assert smoke["ok"] is True
    assert {t["task"] for t in smoke["tasks"]} == {"lamps-hall", "lamps-porch", "lamps-all"}
    code = run(repo, monkeypatch, "sweep", "--candidate", "mock/expert@0.8",
               "--baseline", "mock/expert", "--out", "r")
    results = json.loads((repo / "r" / "results.json").read_text())
    assert (code, results["verdict"]) == (1, "regression")
    assert results["arms"]["baseline"]["success_rate"] == 1.0
    assert results["arms"]["candidate"]["success_rate"] < 0.8


def test_builtins_are_not_imported_by_a_repository_that_does_not_use_them(
    tmp_path: Path,
) -> None:
    build(tmp_path / "repo")
    code = ("import sys; from gate.project.load import load_project; "
            "load_project('gate.yaml'); "
            "print(sorted(m for m in sys.modules if m.startswith('gate.environments.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "repo", check=True,
                         capture_output=True, text=True).stdout
    assert "incident" not in out
    assert "orders" not in out
    assert "gate.environments.registry" in out
    bare = subprocess.run([sys.executable, "-c", "import sys, gate.environments; "
                           "print([m for m in sys.modules if 'incident' in m])"],
                          check=True, capture_output=True, text=True).stdout
    assert bare.strip() == "[]"  # no import side effects


def test_builtins_load_through_the_same_registry_as_entry_points(tmp_path: Path) -> None:
    import tomllib

    registry = EnvironmentRegistry(tmp_path, {}, "gate.yaml")
    for name in ("incident", "orders"):
        decl = registry.declaration(name)
        assert (decl.source, decl.where) == ("entry point", "gate (built-in)")
        assert registry.get(name).__module__ == f"gate.environments.{name}.env"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["gate.environments"] == BUILTIN


@pytest.mark.parametrize(("spec", "message"), [
    ("environments.nope:Lamps", "module 'environments.nope' not found"),
    ("environments.lamps:Nope", "has no attribute 'Nope'"),
    ("environments.lamps:ToolCall", "is not a subclass of gate.environments.Environment"),
    ("environments.lamps", "is not of the form 'package.module:ClassName'"),
    ("environments.broken:Lamps", "importing failed: RuntimeError: half-written at "
                                  "environments/broken.py:2"),
])
def test_broken_declaration_is_exit_4_at_its_line_in_gate_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    spec: str, message: str,
) -> None:
    repo = tmp_path / "repo"
    build(repo, gate_yaml=GATE_YAML.replace('"environments.lamps:Lamps"', f'"{spec}"'))
    (repo / "environments" / "broken.py").write_text(
        '"""oops"""\nraise RuntimeError("half-written")\n')
    assert run(repo, monkeypatch, "validate") == 4
    err = capsys.readouterr().err
    assert f"gate.yaml:{DECL_LINE}: environments.lamps: " in err
    assert message in err
    assert "Traceback" not in err


def test_name_clash_with_a_builtin_is_exit_4_at_the_declaration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    repo = tmp_path / "repo"
    build(repo, gate_yaml=GATE_YAML.replace("  lamps: ", "  lamps: \"environments.lamps:Lamps\"\n"
                                                      "  orders: "))
    assert run(repo, monkeypatch, "validate") == 4
    err = capsys.readouterr().err
    assert f"gate.yaml:{DECL_LINE + 1}: environments.orders: name clash: 'orders' is also " \
           "declared by gate (built-in)" in err


def _plugin(site: Path, dist: str, entries: dict[str, str]) -> None:
    """An installed distribution on ``site`` registering environments as entry points."""
    (site / "lampsplugin").mkdir(parents=True, exist_ok=True)
    (site / "lampsplugin" / "__init__.py").write_text(LAMPS_ENV.replace("RAISE_HOOK", "pass"))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[gate.environments]\n{lines}")


def test_entry_point_environment_loads_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    site = tmp_path / "site"
    _plugin(site, "lampsplugin", {"lamps": "lampsplugin:Lamps"})
    monkeypatch.syspath_prepend(str(site))
    repo = tmp_path / "repo"
    build(repo, gate_yaml=GATE_YAML.replace('environments:\n  lamps: "environments.lamps:Lamps"\n',
                                            ""))
    project = load_project(repo / "gate.yaml")
    decl = project.environments.declaration("lamps")  # type: ignore[union-attr]
    assert (decl.source, decl.where) == ("entry point", "entry point of lampsplugin 1.0")
    assert project.environment("lamps").cls.__module__ == "lampsplugin"
    assert run(repo, monkeypatch, "run", "--model", "mock/expert", "--out", "r") == 0
    assert json.loads((repo / "r" / "results.json").read_text())["arms"]["run"]["successes"] == 3


def test_entry_point_clashing_with_a_builtin_is_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = tmp_path / "site"
    _plugin(site, "rogue", {"orders": "lampsplugin:Lamps"})
    monkeypatch.syspath_prepend(str(site))
    build(tmp_path / "repo")
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path / "repo" / "gate.yaml")
    assert [str(p) for p in info.value.problems] == [
        "entry point of rogue 1.0: environment 'orders': name clash: 'orders' is also declared "
        "by gate (built-in)"]


def test_same_module_name_in_two_repositories_does_not_leak(tmp_path: Path) -> None:
    first, second = build(tmp_path / "one"), build(tmp_path / "two")
    env_two = (tmp_path / "two" / "environments" / "lamps.py")
    env_two.write_text(env_two.read_text().replace('"list_lamps", "switch"',
                                                   '"list_lamps", "switch", "dim"'))
    with pytest.raises(ConfigError) as info:  # two's tool files lack `dim`: its own class
        load_project(second)
    assert "implements 'dim' but no tool file declares it" in str(info.value)
    one = load_project(first)  # and one still gets its own class, not two's
    assert one.environment("lamps").cls.tool_names == {"list_lamps", "switch"}
    assert str(tmp_path / "one") not in sys.path
    assert str(tmp_path / "two") not in sys.path


def test_tool_directory_without_an_environment_is_invalid(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    build(repo)
    (repo / "tools" / "kitchen").mkdir()
    (repo / "tools" / "kitchen" / "boil.yaml").write_text(
        "name: boil\ndescription: boil\nparameters: {type: object}\n")
    with pytest.raises(ConfigError) as info:
        load_project(repo / "gate.yaml")
    assert "no environment 'kitchen' is registered for these tools" in str(info.value)


def test_environment_code_is_hashed_like_the_data_files(tmp_path: Path) -> None:
    """A smoke test vouches for the environment's code too (rule 2: smoke before spend)."""
    config = build(tmp_path / "repo")
    before = load_project(config).hashes
    assert set(before) >= {"environments/lamps.py", "environments/__init__.py"}
    env = tmp_path / "repo" / "environments" / "lamps.py"
    env.write_text(env.read_text() + "\n# a change\n")
    assert load_project(config).hashes["environments/lamps.py"] != before["environments/lamps.py"]
