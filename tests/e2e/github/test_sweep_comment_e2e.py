"""End to end: two sweeps on the same PR, each followed by `gate comment`, leave one comment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_github import FakeGitHub, pull_event, use_fake_github

from gate.cli import main

REPO = "acme/agents"
PR = 7
TOKEN = "ghp_e2e_token_0123456789abcdef"
ME = "gate-bot"


def github_scenario(fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This module's GitHub (the ``gh`` fixture of tests/conftest.py serves it)."""
    fake.add_token(TOKEN, ME)
    fake.add_repo(REPO)
    fake.add_pull(REPO, PR, "carol", "b" * 40, "c" * 40)
    event = pull_event("pull_request.synchronize", repo=REPO, number=PR, author="carol",
                       base_sha="b" * 40, head_sha="c" * 40)
    use_fake_github(monkeypatch, fake, tmp_path, token=TOKEN, repo=REPO, event=event)


def test_two_sweeps_one_comment_updated(gh: FakeGitHub, project_dir: Path,
                                        tmp_path: Path) -> None:
    config = str(project_dir / "gate.yaml")
    first, second = tmp_path / "push-1", tmp_path / "push-2"
    assert main(["sweep", "--config", config, "--candidate", "mock/expert@0.8",
                 "--baseline", "mock/expert", "--out", str(first)]) == 1
    assert main(["comment", "--config", config, "--run", str(first)]) == 0
    assert main(["sweep", "--config", config, "--candidate", "mock/expert",
                 "--baseline", "mock/expert", "--out", str(second)]) == 0
    assert main(["comment", "--config", config, "--run", str(second)]) == 0
    comments = [c for c in gh.comments(REPO, PR) if c.user == ME]
    assert len(comments) == 1
    body = comments[0].body
    assert comments[0].updated == 1
    assert "> **Pass: no regression found** (required check `gate` passed)" in body
    assert "Regression" not in body
    audit_sha = json.loads((second / "results.json").read_text())["evidence"]["audit_sha256"]
    assert audit_sha in body
    assert len(body) < 65_536
