"""The CLI never misleads: every invalid input gives exit 4 and one line naming the flag or the
file (and line), never a traceback, never an exit code that means something else."""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shutil
from pathlib import Path

import pytest

import gate
from gate.cli import build_parser, main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``gate ARGS`` in-process: (exit code, stdout, stderr); argparse exits are caught."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def config(project_dir: Path) -> tuple[str, str]:
    return "--config", str(project_dir / "gate.yaml")


def sweep(project_dir: Path, out: Path, *extra: str) -> tuple[str, ...]:
    return ("sweep", *config(project_dir), "--out", str(out), "--candidate", "mock/expert",
            "--baseline", "mock/expert", *extra)


@pytest.mark.parametrize(("flag", "value", "said"), [
    ("--max-rounds", "0", "must be at least 1, got 0"),
    ("--max-rounds", "-3", "must be at least 1, got -3"),
    ("--budget-usd", "-5", "must be a positive amount of USD, got -5"),
    ("--budget-usd", "0", "must be a positive amount of USD, got 0"),
    ("--budget-usd", "nan", "must be a positive amount of USD, got nan"),
    ("--seed", "-1", "must be 0 or more, got -1"),
])
def test_sweep_flag_out_of_range(project_dir: Path, tmp_path: Path, flag: str, value: str,
                                 said: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    code, _, err = run(capsys, *sweep(project_dir, out, flag, value))
    assert code == 4
    assert err.strip() == f"gate sweep: {flag}: {said} (see gate sweep --help)"
    assert not out.exists()  # refused before anything ran


@pytest.mark.parametrize(("command", "flag", "value", "said"), [
    ("run", "--rounds", "0", "must be at least 1, got 0"),
    ("run", "--seed", "-1", "must be 0 or more, got -1"),
    ("smoke", "--seed", "-1", "must be 0 or more, got -1"),
    ("mock-server", "--seed", "-1", "must be 0 or more, got -1"),
    ("run", "--rounds", "two", "not an integer: 'two'"),
])
def test_other_commands_flag_out_of_range(project_dir: Path, tmp_path: Path, command: str,
                                          flag: str, value: str, said: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    extra = {"run": ("--model", "mock/expert", "--out", str(tmp_path / "r")),
             "smoke": ("--out", str(tmp_path / "r")), "mock-server": ()}[command]
    code, _, err = run(capsys, command, *config(project_dir), *extra, flag, value)
    assert code == 4
    assert err.strip() == f"gate {command}: {flag}: {said} (see gate {command} --help)"


@pytest.mark.parametrize("command", ["smoke", "run", "sweep"])
def test_out_that_is_a_file(project_dir: Path, tmp_path: Path, command: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "taken"
    path.write_text("not a directory\n")
    extra = {"smoke": (), "run": ("--model", "mock/expert"),
             "sweep": ("--candidate", "mock/expert", "--baseline", "mock/expert")}[command]
    for out in (path, path / "below"):
        code, _, err = run(capsys, command, *config(project_dir), "--out", str(out), *extra)
        assert code == 4
        assert f"--out: {path} is a file, not a directory" in err
        assert len(err.strip().splitlines()) == 1
    assert path.read_text() == "not a directory\n"


def test_missing_required_flag_is_exit_4_not_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sweep", "--out", "x")
    assert code == 4  # argparse's own 2 would read as "halted"
    assert "--candidate" in err


@pytest.mark.parametrize("command", ["verify", "report"])
def test_no_run_at_path(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, command, "--run", "/nonexistent")
    assert code == 4
    said = f"gate {command}: --run: no run at /nonexistent (see gate {command} --help)"
    assert err.strip() == said
    assert "MISMATCH" not in out
    code, _, err = run(capsys, command, "--run", str(tmp_path))
    assert code == 4
    assert f"no run at {tmp_path} (no manifest.json)" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"gate {gate.__version__}"
    assert gate.__version__ == importlib.metadata.version("gate")


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for line in ("0  ok", "1  a verdict against the change", "2  halted or paused",
                 "3  inconclusive", "4  invalid input"):
        assert re.search(rf"^  {re.escape(line)}", out, re.MULTILINE), line


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: p for a in actions for name, p in a.choices.items()}


def test_every_option_of_every_command_has_help() -> None:
    parser = build_parser()
    commands = _subparsers(parser)
    assert {"validate", "run", "smoke", "sweep", "report", "verify"} <= set(commands)
    missing = [f"gate {name} {'/'.join(a.option_strings) or a.dest}"
               for name, p in [("", parser), *commands.items()]
               for a in p._actions
               if not isinstance(a, argparse._SubParsersAction)
               and (not a.help or a.help == argparse.SUPPRESS)]
    assert missing == []


@pytest.mark.parametrize(("flag", "model"), [("--candidate", "mock/expret"),
                                             ("--baseline", "mock/expret")])
def test_unknown_model_names_the_flag_and_close_matches(
    project_dir: Path, tmp_path: Path, flag: str, model: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = {"--candidate": model, "--baseline": "mock/expert"}
    if flag == "--baseline":
        args = {"--candidate": "mock/expert", "--baseline": model}
    code, _, err = run(capsys, "sweep", *config(project_dir), "--out", str(tmp_path / "s"),
                       *[x for kv in args.items() for x in kv])
    assert code == 4
    first = err.splitlines()[0]
    assert first.startswith(f"{flag}: unknown model 'mock/expret'")
    assert "did you mean mock/expert" in first
    assert "gate.yaml" not in err
    assert "127.0.0.1" not in err
    assert not (tmp_path / "s").exists()


def test_unregistered_model_without_provider(project_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "run", *config(project_dir), "--out", str(tmp_path / "r"),
                       "--model", "anthropic/claude-sonet-4.5")
    assert code == 4
    assert err.splitlines()[0] == (
        "--model: model 'anthropic/claude-sonet-4.5' is not in models.yaml; did you mean "
        "anthropic/claude-sonnet-4.5?; add it there or pass --provider NAME")


@pytest.mark.parametrize("command", ["sweep", "run"])
def test_missing_key_is_said_before_smoke(project_dir: Path, tmp_path: Path, command: str,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    model = "anthropic/claude-sonnet-4.5"
    extra = (("--candidate", model, "--baseline", "mock/expert", "--smoke", str(tmp_path / "n"))
             if command == "sweep" else ("--model", model))
    code, _, err = run(capsys, command, *config(project_dir), "--out", str(tmp_path / "s"),
                       *extra)
    assert code == 4
    lines = err.splitlines()
    assert "environment variable OPENROUTER_API_KEY" in lines[0]
    assert "provider 'openrouter'" in lines[0]
    assert "smoke" not in err
    assert not (tmp_path / "s").exists()


def _validate(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code, _, err = run(capsys, "validate", *config(project_dir))
    return code, err.splitlines()


def test_unknown_provider_in_models_yaml_has_its_line(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = project_dir / "models.yaml"
    text = registry.read_text()
    registry.write_text(text + "  - id: some/model\n    provider: openrouer\n"
                        "    evaluation_status: pending-evaluation\n")
    line = len(text.splitlines()) + 2
    code, lines = _validate(project_dir, capsys)
    assert code == 4
    assert re.fullmatch(rf".*models\.yaml:{line}: models\[\d+\] some/model: unknown provider "
                        r"'openrouer'.*", lines[0]), lines


def test_duplicate_model_id_points_at_the_second_entry(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = project_dir / "models.yaml"
    text = registry.read_text()
    registry.write_text(text + "  - id: mock/expert\n    provider: mock\n"
                        "    evaluation_status: pending-evaluation\n")
    line = len(text.splitlines()) + 1
    code, lines = _validate(project_dir, capsys)
    assert code == 4
    assert re.fullmatch(rf".*models\.yaml:{line}: .*model id 'mock/expert' appears twice "
                        r"\(first at models\[0\]\)", lines[0]), lines


def test_implementation_without_tool_file_is_one_cause_with_consequences_folded(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = project_dir / "tools" / "incident" / "check_status.yaml"
    tool.unlink()
    code, lines = _validate(project_dir, capsys)
    assert code == 4
    cause = re.fullmatch(r".*tools/incident: environment 'incident' implements 'check_status' "
                         r"but no tool file declares it \(and (\d+) more problems caused by "
                         r"this: fixtures call 'check_status'\)", lines[0])
    assert cause is not None, lines
    assert int(cause.group(1)) > 10  # every fixture step calling it, counted, not printed
    assert lines[1:] == ["gate: 1 problem(s); invalid input"]


def test_tool_file_without_implementation_is_said_once(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = project_dir / "tools" / "incident" / "check_status.yaml"
    shutil.copy(src, src.with_name("teleport.yaml"))
    (src.with_name("teleport.yaml")).write_text(src.read_text().replace("check_status",
                                                                        "teleport"))
    code, lines = _validate(project_dir, capsys)
    assert code == 4
    assert re.fullmatch(r".*teleport\.yaml:\d+: tool 'teleport' has no implementation in "
                        r"environment 'incident'", lines[0]), lines
    assert len(lines) == 2
