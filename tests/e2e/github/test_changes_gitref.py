"""``gate changes`` and gate.gitref on a real temporary git repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import git
from fake_github import run_gate

from gate.errors import ConfigError
from gate.gitref import (
    GitRefError,
    GitRefSource,
    changed_files,
    list_files_at,
    read_text_at,
    resolve,
)

GATE_YAML = "version: 1\nproviders:\n  mock:\n    type: mock\n"
MODELS = """\
models:
  - id: vendor/prod
    provider: mock
    evaluation_status: adopted
  - id: vendor/flip
    provider: mock
    evaluation_status: pending-human-review
  - id: vendor/old
    provider: mock
    evaluation_status: rejected
"""
TOOL = "- name: get_logs\n  description: Read logs.\n  parameters: {type: object}\n"
TASK = "id: t1\nenvironment: incident\n"


def write(repo: Path, files: dict[str, str | None]) -> None:
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit(repo: Path, message: str, files: dict[str, str | None]) -> str:
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "base", {
        "gate.yaml": GATE_YAML,
        "models.yaml": MODELS,
        "prompts/incident.md": "You are an SRE agent.\n",
        "prompts/orders.md": "You are an orders agent.\n",
        "tools/incident.yaml": TOOL,
        "tasks/incident/t1.yaml": TASK,
    })
    git(root, "tag", "base")
    return root


def head_commit(repo: Path) -> str:
    return commit(repo, "head", {
        "models.yaml": MODELS.replace("pending-human-review", "adopted")
        + "  - id: vendor/new\n    provider: mock\n    evaluation_status: pending-evaluation\n",
        "prompts/incident.md": "You are a careful SRE agent.\n",
    })


def changes(repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            *args: str) -> dict[str, Any]:
    monkeypatch.chdir(repo)
    capsys.readouterr()
    assert run_gate("changes", *args) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_changes_names_exactly_the_three_changes(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    base_sha = resolve("base", repo)
    head_sha = head_commit(repo)
    out_file = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out_file))
    result = changes(repo, monkeypatch, capsys, "--base", "base")
    assert result["base"] == {"ref": "base", "sha": base_sha}
    assert result["head"] == {"ref": "HEAD", "sha": head_sha}
    assert result["models"] == [
        {"id": "vendor/flip", "change": "modified",
         "status": {"from": "pending-human-review", "to": "adopted"}, "fields": {}},
        {"id": "vendor/new", "change": "added",
         "status": {"from": None, "to": "pending-evaluation"}, "fields": {},
         "entry": {"id": "vendor/new", "provider": "mock",
                   "evaluation_status": "pending-evaluation"}},
    ]
    assert result["prompts"] == [{"path": "prompts/incident.md", "change": "modified"}]
    assert result["tools"] == []
    assert result["tasks"] == []
    assert result["adoptions"] == ["vendor/flip"]
    assert result["sweeps"] == [
        {"id": "model-vendor-new", "candidate": "vendor/new", "baseline": "vendor/prod",
         "baseline_ref": None,
         "reason": "new model entry vendor/new (pending-evaluation); "
                   "baseline: vendor/prod (adopted at base)"},
        {"id": "prompts-vendor-prod", "candidate": "vendor/prod", "baseline": "vendor/prod",
         "baseline_ref": base_sha,
         "reason": "prompts/tools changed: prompts/incident.md (modified); "
                   "vendor/prod with head prompts/tools vs base"},
    ]
    assert result["matrix"] == {"include": result["sweeps"]}
    outputs = dict(line.split("=", 1) for line in out_file.read_text().splitlines())
    assert json.loads(outputs["matrix"]) == result["matrix"]
    assert outputs["has_sweeps"] == "true"
    assert json.loads(outputs["adoptions"]) == ["vendor/flip"]


def test_no_changes_no_sweeps(repo: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    commit(repo, "docs only", {"README.md": "hello\n"})
    result = changes(repo, monkeypatch, capsys, "--base", "base", "--head", "HEAD")
    assert result["models"] == []
    assert result["sweeps"] == []
    assert result["matrix"] == {"include": []}


def test_status_back_to_in_progress_and_tool_and_task_changes(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    commit(repo, "change", {
        "models.yaml": MODELS.replace("rejected", "in-progress").replace(
            "provider: mock\n    evaluation_status: adopted",
            "provider: mock\n    evaluation_status: adopted\n    notes: prod"),
        "tools/incident.yaml": None,
        "tools/orders.yaml": TOOL.replace("get_logs", "get_order"),
        "tasks/incident/t2.yaml": TASK.replace("t1", "t2"),
    })
    result = changes(repo, monkeypatch, capsys, "--base", "base")
    assert result["models"] == [
        {"id": "vendor/prod", "change": "modified", "status": None,
         "fields": {"notes": {"from": None, "to": "prod"}}},
        {"id": "vendor/old", "change": "modified",
         "status": {"from": "rejected", "to": "in-progress"}, "fields": {}},
    ]
    assert result["tools"] == [
        {"path": "tools/incident.yaml", "change": "removed"},
        {"path": "tools/orders.yaml", "change": "added"},
    ]
    assert result["tasks"] == [{"path": "tasks/incident/t2.yaml", "change": "added"}]
    assert [s["id"] for s in result["sweeps"]] == ["model-vendor-old", "prompts-vendor-prod"]


def test_removed_model_and_no_adopted_baseline(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    commit(repo, "drop prod", {
        "models.yaml": "models:\n  - id: vendor/x\n    provider: mock\n"
                       "    evaluation_status: pending-evaluation\n",
    })
    result = changes(repo, monkeypatch, capsys, "--base", "base")
    assert {m["id"]: m["change"] for m in result["models"]} == {
        "vendor/x": "added", "vendor/prod": "removed", "vendor/flip": "removed",
        "vendor/old": "removed",
    }
    (sweep,) = result["sweeps"]
    assert sweep["candidate"] == "vendor/x"
    assert sweep["baseline"] == "vendor/prod"  # adopted at base: what production runs today


def test_unknown_ref_is_invalid_input(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(repo)
    assert run_gate("changes", "--base", "no-such-branch") == 4
    err = capsys.readouterr().err
    assert "git ref 'no-such-branch': unknown ref" in err
    assert "Traceback" not in err


def test_invalid_registry_at_base_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "bad", {"gate.yaml": GATE_YAML,
                         "models.yaml": "models:\n  - id: a\n    provider: mock\n"
                                        "    evaluation_status: adopted\n    colour: red\n"})
    git(root, "tag", "bad")
    commit(root, "fix", {"models.yaml": MODELS})
    monkeypatch.chdir(root)
    assert run_gate("changes", "--base", "bad") == 4
    assert "models.yaml (at bad):5: models.0.colour: unknown field" in capsys.readouterr().err


def test_gitref_reads_and_lists(repo: Path) -> None:
    head_commit(repo)
    assert read_text_at("base", "prompts/incident.md", repo) == "You are an SRE agent.\n"
    assert read_text_at("HEAD", "prompts/incident.md", repo) == "You are a careful SRE agent.\n"
    assert read_text_at("base", "prompts/missing.md", repo) is None
    assert read_text_at("base", "prompts", repo) is None  # a directory is not a file
    assert list_files_at("base", "prompts", repo) == ["prompts/incident.md", "prompts/orders.md"]
    assert list_files_at("base", "nowhere", repo) == []
    assert changed_files("base", "HEAD", ["prompts", "tools"], repo) == [
        ("modified", "prompts/incident.md"),
    ]
    assert len(resolve("base", repo)) == 40


def test_gitref_errors(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(GitRefError, match="unknown ref"):
        read_text_at("nope", "models.yaml", repo)
    with pytest.raises(GitRefError, match="not a valid git ref"):
        resolve("--output=/tmp/x", repo)
    with pytest.raises(GitRefError, match="stay inside"):
        read_text_at("base", "../outside", repo)
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    with pytest.raises(GitRefError, match="not inside a git repository"):
        resolve("HEAD", outside)
    assert issubclass(GitRefError, ConfigError)


def test_gitref_source_in_a_subdirectory(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "one", {"agents/prompts/a.md": "v1\n", "prompts/a.md": "top\n"})
    git(root, "tag", "v1")
    commit(root, "two", {"agents/prompts/a.md": "v2\n"})
    source = GitRefSource(root / "agents", "v1")
    assert source.read("prompts/a.md") == b"v1\n"
    assert source.list("prompts") == ["prompts/a.md"]
    assert source.label.startswith("v1@")
    assert source.read("prompts/missing.md") is None


def test_changes_reports_a_moved_registry_and_a_changed_adopted_entry(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    moved = MODELS.replace("provider: mock\n    evaluation_status: adopted",
                           "provider: other\n    evaluation_status: adopted")
    commit(repo, "move", {"gate.yaml": GATE_YAML + "suite:\n  registry: reg/models.yaml\n",
                          "models.yaml": None, "reg/models.yaml": moved})
    result = changes(repo, monkeypatch, capsys, "--base", "base", "--head", "HEAD")
    assert result["registry"] == "reg/models.yaml"
    assert result["registry_base"] == "models.yaml"
    assert result["adoptions"] == ["vendor/prod"]
    assert result["needs_code_owner"] == [
        "vendor/prod is adopted and changes provider",
        "suite.registry moves from models.yaml to reg/models.yaml",
    ]


def test_changes_reports_a_deleted_registry(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    commit(repo, "rename", {"models.yaml": None, "models.yml": MODELS})
    result = changes(repo, monkeypatch, capsys, "--base", "base", "--head", "HEAD")
    assert result["needs_code_owner"] == [
        "vendor/prod is adopted and is removed",  # removal of an adopted entry needs an owner
        "models.yaml is missing at HEAD (renamed or deleted)",
    ]


def test_sweep_reason_is_neutralised_for_the_job_summary(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    hostile = "@acme/core <img src=x> [x](http://evil)"
    commit(repo, "hostile", {"models.yaml": MODELS + f"  - id: {json.dumps(hostile)}\n"
                             "    provider: mock\n    evaluation_status: pending-evaluation\n"})
    result = changes(repo, monkeypatch, capsys, "--base", "base", "--head", "HEAD")
    (sweep,) = result["sweeps"]
    assert sweep["candidate"] == hostile  # exact: an argument, never rendered
    for raw in ("@acme", "<img", "http://", "[x]"):
        assert raw not in sweep["reason"]


def test_changes_reports_a_redefined_provider_of_an_adopted_entry(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    moved = GATE_YAML.replace("type: mock", "type: openai\n    base_url: https://x.example/v1"
                              "\n    api_key_env: X_KEY")
    assert moved != GATE_YAML
    commit(repo, "provider", {"gate.yaml": moved})
    result = changes(repo, monkeypatch, capsys, "--base", "base", "--head", "HEAD")
    assert result["needs_code_owner"] == [
        "vendor/prod is adopted and its provider mock changes type, base_url, api_key_env"]
