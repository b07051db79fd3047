"""``gate init``: a repository that works at once, with no key and no edit; never overwrites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from paths import REPO

from gate.cli import main
from gate.scaffold import PLACEHOLDER, for_user_repository, pin, template_files


@pytest.mark.slow  # end to end: not in the fast loop
def test_init_then_validate_smoke_and_sweep_find_the_regression(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "new-repo"
    assert main(["init", str(target)]) == 0
    for rel in ("gate.yaml", "models.yaml", ".github/workflows/gate.yml",
                ".github/workflows/adoption-guard.yml", ".github/CODEOWNERS", "README.md",
                "environments/tickets.py", "prompts/tickets.md"):
        assert (target / rel).is_file(), rel
    tasks = sorted((target / "tasks" / "tickets").glob("*.yaml"))
    assert len(tasks) >= 3
    monkeypatch.chdir(target)
    capsys.readouterr()
    assert main(["validate"]) == 0
    assert f"ok: {len(tasks)} tasks, 6 tools, 1 prompts, 2 models" in capsys.readouterr().out
    assert main(["smoke", "--out", "s"]) == 0
    assert json.loads(Path("s/smoke.json").read_text())["ok"] is True
    code = main(["sweep", "--candidate", "mock/expert@0.8", "--baseline", "mock/expert",
                 "--out", "r"])
    results = json.loads(Path("r/results.json").read_text())
    assert (code, results["status"], results["verdict"]) == (1, "complete", "regression")
    assert results["decision"]["rounds"] < results["scope"]["planned"] // (2 * len(tasks))


def test_every_task_has_evidence_distractors_and_a_reference(tmp_path: Path) -> None:
    from gate.project.load import load_project

    assert main(["init", str(tmp_path / "r")]) == 0
    project = load_project(tmp_path / "r" / "gate.yaml")
    assert project.environments is not None
    assert project.environments.declaration("tickets").where.endswith("r/gate.yaml:9")
    for lt in project.tasks:
        f = lt.fixture
        assert f.required_evidence
        assert f.distractors
        assert f.reference_trajectory
        assert f.expected
    assert {lt.task.difficulty for lt in project.tasks} == {"easy", "medium", "hard"}


def test_init_refuses_to_overwrite_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "repo"
    (target / "prompts").mkdir(parents=True)
    (target / "prompts" / "tickets.md").write_text("mine\n")
    assert main(["init", str(target)]) == 4
    err = capsys.readouterr().err
    assert f"{target.as_posix()}/prompts/tickets.md: already exists" in err
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "prompts", "prompts/tickets.md"]
    assert (target / "prompts" / "tickets.md").read_text() == "mine\n"


def test_scaffold_workflows_are_thin_pinned_callers_of_gates_own() -> None:
    """The scaffold ships gate's own thin callers, calling gate's reusable workflows pinned by
    commit sha (one pin per file, the same sha as gate is installed from): any drift is caught
    here, and a security fix reaches a team by moving that pin."""
    files = template_files()
    shipped = {rel.rsplit("/", 1)[1] for rel in files if rel.startswith(".github/workflows/")}
    assert shipped == {"gate.yml", "gate-comment.yml", "adoption-guard.yml",
                       "adoption-guard-review.yml"}
    repo, sha = pin() or PLACEHOLDER
    for name in sorted(shipped):
        ours = (REPO / ".github" / "workflows" / name).read_bytes()
        user = files[f".github/workflows/{name}"]
        assert user == for_user_repository(ours, pin()), f"resync gate/scaffold/template: {name}"
        text = user.decode()
        assert len(text.splitlines()) <= 35, name  # thin: the jobs live in gate's repository
        if name == "adoption-guard-review.yml":
            assert "uses: ./" not in text
            assert "gate-sha" not in text
            continue
        (uses,) = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("uses:")]
        assert uses == f"uses: {repo}/.github/workflows/reusable-{name}@{sha}  # gate"
        assert f"gate-sha: {sha}" in text
        assert f"gate-repository: {repo}" in text
        assert "${{ github.sha }}" not in text
    assert not any(rel.endswith("gate_plan.py") for rel in files)  # `gate plan` does it


def test_scaffold_environment_uses_only_the_public_api() -> None:
    source = template_files()["environments/tickets.py"].decode()
    imports = [line for line in source.splitlines() if "gate" in line and "import" in line]
    assert imports == [
        "from gate.environments import Environment, EnvOutcome, Fixture, ToolCall, ToolResult"]


@pytest.mark.slow
@pytest.mark.parametrize("on_path", [False, True])
def test_the_printed_next_commands_run_as_printed(tmp_path: Path, on_path: bool) -> None:
    """A new user copies `next:` into a shell: it runs whether or not gate's venv is on PATH."""
    import os
    import subprocess
    import sys

    gate = Path(sys.executable).parent / "gate"
    path = os.environ.get("PATH", "")
    path = f"{gate.parent}{os.pathsep}{path}" if on_path else os.pathsep.join(
        p for p in path.split(os.pathsep) if Path(p).resolve() != gate.parent.resolve())
    env = {**os.environ, "PATH": path}
    init = subprocess.run([str(gate), "init", "new-repo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert init.returncode == 0, init.stderr
    (next_line,) = [x for x in init.stdout.splitlines() if x.startswith("next: ")]
    assert next_line.startswith("next: cd new-repo && ")
    assert (" gate validate" in next_line) == on_path
    run = subprocess.run(["bash", "-c", next_line.removeprefix("next: ")], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((tmp_path / "new-repo/runs/smoke/smoke.json").read_text())["ok"] is True
