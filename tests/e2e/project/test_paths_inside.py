"""Every file the loader reads resolves inside the repository (the directory of gate.yaml):
``..`` in a fixture reference, a symlink in tasks/ or prompts/, a suite directory pointing out.
Reading at a git ref refuses ``..`` and absolute paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import git, validate

from gate.gitref import GitRefError, list_files_at, read_bytes_at

TASK = "tasks/orders/orders-easy-02-refund-damaged-blender.yaml"


def secret_outside(project: Path) -> Path:
    """A valid-looking YAML file next to the repository, which must never be read."""
    outside = project.parent / "outside"
    outside.mkdir(exist_ok=True)
    target = outside / "fx.yaml"
    fixture = project / "fixtures/orders/refund-damaged-blender.yaml"
    target.write_text(fixture.read_text())
    return target


def test_fixture_reference_with_dotdot_is_refused(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_outside(project_dir)
    task = project_dir / TASK
    text = task.read_text()
    assert "fixture: " in text
    lines = text.splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("fixture:"))
    lines[number - 1] = "fixture: ../../outside/fx.yaml"
    task.write_text("\n".join(lines) + "\n")
    code, err = validate(capsys, project_dir)
    assert code == 4
    assert f"{Path(TASK).name}:{number}: fixture '../../outside/fx.yaml' refused: resolves " \
        "outside the repository" in err


def test_symlink_in_tasks_to_etc_passwd_is_refused_naming_the_file(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project_dir / "tasks/orders/zz-evil.yaml").symlink_to("/etc/passwd")
    code, err = validate(capsys, project_dir)
    assert code == 4
    line = next(x for x in err.splitlines() if "zz-evil.yaml" in x)
    assert "refused: resolves outside the repository (/etc/passwd)" in line
    assert "root:" not in err  # nothing of the target was read into a message


def test_symlinked_prompt_and_tool_are_refused(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = secret_outside(project_dir)
    prompt = project_dir / "prompts/orders.md"
    prompt.unlink()
    prompt.symlink_to(target)
    tool = next((project_dir / "tools/orders").glob("*.yaml"))
    saved = project_dir.parent / "outside" / tool.name
    tool.rename(saved)
    tool.symlink_to(saved)
    code, err = validate(capsys, project_dir)
    assert code == 4
    assert f"orders.md: refused: resolves outside the repository ({target})" in err
    assert f"{tool.name}: refused: resolves outside the repository" in err


def test_symlink_inside_the_repository_is_fine(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = project_dir / "prompts/orders.md"
    kept = project_dir / "prompts/orders-real.txt"
    prompt.rename(kept)
    prompt.symlink_to(kept)
    code, err = validate(capsys, project_dir)
    assert code == 0, err


@pytest.mark.parametrize(("key", "value"), [
    ("registry", "../outside/fx.yaml"), ("tasks_dir", "../outside"),
    ("registry", "/etc/passwd"),
])
def test_suite_paths_leaving_the_repository_are_refused(
    project_dir: Path, capsys: pytest.CaptureFixture[str], key: str, value: str
) -> None:
    secret_outside(project_dir)
    config = project_dir / "gate.yaml"
    text = config.read_text()
    default = {"registry": "models.yaml", "tasks_dir": "tasks"}[key]
    assert f"  {key}: {default}\n" in text
    config.write_text(text.replace(f"  {key}: {default}\n", f"  {key}: {value}\n"))
    code, err = validate(capsys, project_dir)
    assert code == 4
    assert "refused: resolves outside the repository" in err


def test_git_ref_reads_refuse_dotdot_and_absolute_paths(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "a.md").write_text("a\n")
    (tmp_path / "secret.md").write_text("secret\n")
    git(repo, "init", "-q")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    sub = repo / "sub"
    assert read_bytes_at("HEAD", "a.md", sub) == b"a\n"
    for path in ("../secret.md", "/etc/passwd", "x/../../secret.md", "..\\secret.md"):
        with pytest.raises(GitRefError, match="stay inside"):
            read_bytes_at("HEAD", path, sub)
    with pytest.raises(GitRefError, match="stay inside"):
        list_files_at("HEAD", "..", sub)
    with pytest.raises(GitRefError, match="stay inside"):
        list_files_at("HEAD", "/", sub)
