"""`gate validate` on the repository and on corrupted copies: exit 4, naming file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from paths import REPO

from gate.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_repository_is_valid(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "validate", "--config", str(project_dir / "gate.yaml"))
    assert code == 0
    n = int(re.search(r"ok: (\d+) tasks", out).group(1))  # type: ignore[union-attr]
    assert n >= 40


def _corrupt_and_validate(
    project_dir: Path, capsys: pytest.CaptureFixture[str], relpath: str, edit: str
) -> tuple[int, str]:
    path = project_dir / relpath
    text = path.read_text()
    if edit == "syntax":
        path.write_text(text + "\n  broken: [unclosed\n")
    elif edit == "truncate":
        path.write_text(text[: len(text) // 2] + "\n: :\n")
    code, _, err = run(capsys, "validate", "--config", str(project_dir / "gate.yaml"))
    return code, err


def _suite_files(kind: str) -> list[str]:
    root = REPO
    return sorted(p.relative_to(root).as_posix() for p in (root / kind).rglob("*.yaml"))


@pytest.mark.parametrize("relpath", _suite_files("tasks") + _suite_files("fixtures"))
def test_corrupting_any_task_or_fixture_fails_and_names_it(
    project_dir: Path, capsys: pytest.CaptureFixture[str], relpath: str
) -> None:
    code, err = _corrupt_and_validate(project_dir, capsys, relpath, "syntax")
    assert code == 4
    assert "Traceback" not in err
    assert re.search(re.escape(relpath) + r":\d+: ", err), err


def test_duplicate_key_in_models_yaml(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project_dir / "models.yaml"
    path.write_text(path.read_text().replace(
        "    provider: mock\n    evaluation_status: adopted",
        "    provider: mock\n    evaluation_status: adopted\n    provider: mock", 1))
    code, _, err = run(capsys, "validate", "--config", str(project_dir / "gate.yaml"))
    assert code == 4
    assert re.search(r"models\.yaml:\d+: duplicate key 'provider'", err), err


def _first(kind: str, project_dir: Path) -> Path:
    return sorted((project_dir / kind).rglob("*.yaml"))[0]


def test_task_naming_a_missing_fixture(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = _first("tasks", project_dir)
    text = task.read_text()
    task.write_text(re.sub(r"fixture: .*", "fixture: incident/does-not-exist.yaml", text))
    code, _, err = run(capsys, "validate", "--config", str(project_dir / "gate.yaml"))
    assert code == 4
    assert "does-not-exist.yaml" in err
    assert task.name in err


def test_reference_that_misses_the_expected_state(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = _first("fixtures", project_dir)
    lines = fixture.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("reference_trajectory:"))
    # drop the last call of the reference trajectory
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith((" ", "-"))),
               len(lines))
    calls = [i for i in range(start + 1, end) if lines[i].lstrip().startswith("- ")]
    del lines[calls[-1]:end]
    fixture.write_text("".join(lines))
    code, _, err = run(capsys, "validate", "--config", str(project_dir / "gate.yaml"))
    assert code == 4
    assert "does not reach the expected end state" in err
    assert fixture.name in err


def test_empty_reference_output(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = _first("fixtures", project_dir)
    text = fixture.read_text()
    fixture.write_text(re.sub(r"(?ms)^reference_output:.*?(?=^\S|\Z)", 'reference_output: ""\n',
                              text))
    code, _, err = run(capsys, "validate", "--config", str(project_dir / "gate.yaml"))
    assert code == 4
    assert "reference_output is empty" in err


def test_duplicate_task_id(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = sorted((project_dir / "tasks" / "orders").glob("*.yaml"))[:2]
    task_id = re.search(r"^id: (.*)$", first.read_text(), re.M).group(1)  # type: ignore[union-attr]
    second.write_text(re.sub(r"^id: .*$", f"id: {task_id}", second.read_text(), flags=re.M))
    code, _, err = run(capsys, "validate", "--config", str(project_dir / "gate.yaml"))
    assert code == 4
    assert re.search(rf"{second.name}:\d+: duplicate task id", err), err


def test_tool_file_without_implementation_and_implementation_without_file(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = sorted((project_dir / "tools" / "incident").glob("*.yaml"))[0]
    (tool.parent / "teleport.yaml").write_text(
        "name: teleport\ndescription: not implemented\n"
        "parameters: {type: object, properties: {}, additionalProperties: false}\n")
    tool.unlink()
    code, _, err = run(capsys, "validate", "--config", str(project_dir / "gate.yaml"))
    assert code == 4
    assert "'teleport' has no implementation" in err
    assert f"implements {tool.stem!r} but no tool file declares it" in err


def test_unknown_key_in_gate_yaml(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = project_dir / "gate.yaml"
    cfg.write_text(cfg.read_text().replace("budget:\n", "budget:\n  ceilng_usd: 3\n"))
    code, _, err = run(capsys, "validate", "--config", str(cfg))
    assert code == 4
    assert re.search(r"gate\.yaml:\d+: budget\.ceilng_usd: unknown field", err)


def test_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "--config", str(tmp_path / "nope.yaml"))
    assert code == 4
    assert "nope.yaml: configuration file not found" in err


@pytest.mark.parametrize(("lam", "why"), [("0.95", ".*bet cap"), ("0.8", ".*bet cap"),
                                         ("5e-324", ""), ("0.001", "")])
def test_a_first_bet_outside_its_range_is_refused_at_validate(
    project_dir: Path, capsys: pytest.CaptureFixture[str], lam: str, why: str
) -> None:
    """min(0.75, 0.9 / 1.1) = 0.75 at delta 0.10: a larger lam would be clipped or, at 0.95,
    make the sweep's e-process refuse to start; a bet too small to move the wealth (at 5e-324
    the prior's arithmetic overflows and the accept-side bet comes out NaN) is refused too."""
    cfg = project_dir / "gate.yaml"
    text = cfg.read_text()
    cfg.write_text(text.replace("  lam: 0.3 ", f"  lam: {lam} ", 1))
    line = 1 + text.splitlines().index(next(x for x in text.splitlines()
                                            if x.startswith("  lam: 0.3")))
    code, _, err = run(capsys, "validate", "--config", str(cfg))
    assert code == 4
    assert re.search(rf"gate\.yaml:{line}: statistics\.lam: {why}", err), err
