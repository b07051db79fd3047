"""``gate guard`` against a local GitHub: every adoption scenario, exit code and commit status."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fake_github import (
    GATE_YAML,
    REGISTRY_ADOPTED,
    REGISTRY_PENDING,
    FakeGitHub,
    pull_event,
    run_gate,
)
from paths import WEBHOOKS

from gate.github.guard import CONTEXT

REPO = "acme/agents"
PR = 7
AUTHOR = "carol"
BASE = "b" * 40
OLD = "0" * 40
HEAD = "c" * 40
TOKEN = "ghs_test_token_guard_0123456789"

MODELS_BASE, MODELS_HEAD = REGISTRY_PENDING, REGISTRY_ADOPTED
CODEOWNERS = """\
# default owner
*             @acme/maintainers
models.yaml   @alice @carol
"""


def github_scenario(fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This module's GitHub (the ``gh`` fixture of tests/conftest.py serves it)."""
    fake.add_token(TOKEN, "github-actions[bot]", installation=True)
    fake.add_repo(REPO)
    fake.add_team("acme", "maintainers", {"zed": "active"})
    fake.add_pull(REPO, PR, AUTHOR, BASE, HEAD)
    for login in ("alice", "carol", "dora", "dave", "erin", "zed"):
        fake.set_permission(REPO, login, "write")
    for team in ("maintainers", "model-owners"):
        fake.set_team_permission(REPO, "acme", team, "push")
    (tmp_path / "gate.yaml").write_text(GATE_YAML)
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GATE_GITHUB_MIN_INTERVAL_S", "0")
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    set_event(monkeypatch, tmp_path, "pull_request.synchronize")


def set_event(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str,
              **overrides: Any) -> None:
    event = pull_event(name, repo=REPO, number=PR, author=AUTHOR, base_sha=BASE,
                       head_sha=HEAD, **overrides)
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))


def commits(fake: FakeGitHub, *, base: dict[str, str | None] | None = None,
            head: dict[str, str | None] | None = None) -> None:
    base_files: dict[str, str | None] = {
        "gate.yaml": GATE_YAML,
        "models.yaml": MODELS_BASE,
        ".github/CODEOWNERS": CODEOWNERS,
    }
    base_files.update(base or {})
    head_files = dict(base_files)
    head_files["models.yaml"] = MODELS_HEAD
    head_files.update(head or {})
    fake.add_commit(REPO, BASE, {k: v for k, v in base_files.items() if v is not None})
    fake.add_commit(REPO, OLD, {k: v for k, v in head_files.items() if v is not None})
    fake.add_commit(REPO, HEAD, {k: v for k, v in head_files.items() if v is not None})


def run_guard(fake: FakeGitHub) -> tuple[int, dict[str, Any]]:
    code = run_gate("guard")
    statuses = fake.statuses(REPO, HEAD)
    assert [s["state"] for s in statuses[:1]] == ["pending"], statuses  # pending first
    assert len(statuses) == 2, statuses
    status = statuses[1]
    assert status["context"] == CONTEXT
    assert len(status["description"]) <= 140
    assert status["target_url"] == "https://github.example/acme/agents/actions/runs/4242"
    assert status["state"] == ("success" if code == 0 else "failure")
    return code, status


def test_no_approval_blocks(gh: FakeGitHub, capsys: pytest.CaptureFixture[str]) -> None:
    commits(gh)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; no approval by a code owner (@alice @carol)"
    )
    out = capsys.readouterr().out
    assert "blocked: vendor/new-model becomes adopted" in out
    assert TOKEN not in out
    summary = Path("summary.md").read_text()
    assert "gate/adoption-guard: blocked" in summary


def test_owner_approval_at_head_allows(gh: FakeGitHub) -> None:
    commits(gh)
    gh.add_review(REPO, PR, "bob", "COMMENTED", HEAD)
    gh.add_review(REPO, PR, "Alice", "APPROVED", HEAD)  # logins match case-insensitively
    code, status = run_guard(gh)
    assert code == 0
    assert status["description"] == (
        "allowed: vendor/new-model becomes adopted; approved by code owner Alice at ccccccc"
    )


def test_approval_by_non_owner_blocks(gh: FakeGitHub) -> None:
    commits(gh)
    gh.add_review(REPO, PR, "bob", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; approval by bob is not from a code owner "
        "(@alice @carol)"
    )


def test_approval_by_author_blocks(gh: FakeGitHub) -> None:
    commits(gh)  # carol is a code owner of models.yaml and the PR author
    gh.add_review(REPO, PR, AUTHOR, "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; approval by carol does not count: "
        "carol is the PR author"
    )


def test_stale_approval_blocks(gh: FakeGitHub) -> None:
    commits(gh)
    gh.add_review(REPO, PR, "alice", "APPROVED", OLD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; approval by alice is for an older commit "
        "(0000000, head is ccccccc)"
    )


def test_dismissed_approval_blocks(gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: Path) -> None:
    commits(gh)
    review = gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    gh.dismiss_review(REPO, PR, review.id)
    set_event(monkeypatch, tmp_path, "pull_request_review.dismissed")
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; review by alice was dismissed"
    )


def test_comment_after_approval_does_not_override(gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    commits(gh)
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    gh.add_review(REPO, PR, "alice", "COMMENTED", HEAD)
    set_event(monkeypatch, tmp_path, "pull_request_review.submitted")
    code, status = run_guard(gh)
    assert code == 0
    assert status["description"].startswith("allowed: vendor/new-model becomes adopted")


def test_changes_requested_after_approval_blocks(gh: FakeGitHub) -> None:
    commits(gh)
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    gh.add_review(REPO, PR, "alice", "CHANGES_REQUESTED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; code owner alice requested changes"
    )


def test_codeowners_edited_in_pr_does_not_count(gh: FakeGitHub) -> None:
    # The PR adds its author and a friend as owners of models.yaml; only the base copy counts.
    head_owners = CODEOWNERS + "models.yaml   @carol @mallory\n"
    commits(gh, head={".github/CODEOWNERS": head_owners})
    gh.add_review(REPO, PR, "mallory", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; approval by mallory is not from a code owner "
        "(@alice @carol)"
    )


def test_team_owner_member_allows(gh: FakeGitHub) -> None:
    commits(gh, base={".github/CODEOWNERS": "models.yaml @acme/model-owners\n"})
    gh.add_team("acme", "model-owners", {"dave": "active", "erin": "pending"})
    gh.add_review(REPO, PR, "dave", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 0
    assert status["description"] == (
        "allowed: vendor/new-model becomes adopted; approved by code owner dave at ccccccc"
    )


def test_team_owner_non_member_blocks(gh: FakeGitHub) -> None:
    commits(gh, base={".github/CODEOWNERS": "models.yaml @acme/model-owners\n"})
    gh.add_team("acme", "model-owners", {"dave": "active", "erin": "pending"})
    gh.add_review(REPO, PR, "frank", "APPROVED", HEAD)
    gh.add_review(REPO, PR, "erin", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; approval by frank is not from a code owner "
        "(not a member of @acme/model-owners); approval by eri…"
    )
    out_requests = [p for _m, p in gh.requests if "/memberships/" in p]
    assert out_requests == [
        "/orgs/acme/teams/model-owners/memberships/frank",
        "/orgs/acme/teams/model-owners/memberships/erin",
    ]


def test_team_membership_403_fails_closed(gh: FakeGitHub) -> None:
    commits(gh, base={".github/CODEOWNERS": "models.yaml @acme/model-owners\n"})
    gh.add_team("acme", "model-owners", {"dave": "active"})
    gh.fail("GET", r"/memberships/", 403, "Resource not accessible by integration")
    gh.add_review(REPO, PR, "dave", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    # The shipped setup (GITHUB_TOKEN, CODEOWNERS naming teams): the message names the missing
    # permission and the fix.
    assert status["description"].startswith(
        "blocked: vendor/new-model becomes adopted; token lacks org members:read to check team "
        "owners (use a GitHub App token)"
    )
    summary = Path("summary.md").read_text()
    assert "Members: read" in summary
    assert "actions/create-github-app-token" in summary
    assert "cannot read ＠acme/model-owners membership (HTTP 403)" in summary


def test_status_change_to_other_than_adopted_passes(gh: FakeGitHub) -> None:
    commits(gh, head={"models.yaml": MODELS_BASE.replace("pending-human-review", "rejected")})
    code, status = run_guard(gh)
    assert code == 0
    assert status["description"] == "no model becomes adopted"


def test_new_entry_already_adopted_counts(gh: FakeGitHub) -> None:
    added = MODELS_BASE + "  - id: vendor/sneaky\n    provider: mock\n" \
        "    evaluation_status: adopted\n"
    commits(gh, head={"models.yaml": added})
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"].startswith("blocked: vendor/sneaky becomes adopted;")


def test_no_matching_codeowners_rule_fails_closed(gh: FakeGitHub) -> None:
    commits(gh, base={".github/CODEOWNERS": "docs/  @alice\n"})
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; no CODEOWNERS rule at base matches "
        "models.yaml: fail closed"
    )


def test_rule_without_owner_fails_closed(gh: FakeGitHub) -> None:
    # Last matching rule wins: the later ownerless rule removes alice.
    commits(gh, base={".github/CODEOWNERS": "models.yaml @alice\n*.yaml\n"})
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; .github/CODEOWNERS:2 at base gives "
        "models.yaml no user or team owner: fail closed"
    )


def test_no_codeowners_file_fails_closed(gh: FakeGitHub) -> None:
    commits(gh, base={".github/CODEOWNERS": None},
            head={"CODEOWNERS": "models.yaml @carol\n"})
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; no CODEOWNERS at base bbbbbbb "
        "(.github/, root, docs/): fail closed"
    )


def test_codeowners_in_docs_is_found(gh: FakeGitHub) -> None:
    commits(gh, base={".github/CODEOWNERS": None,
                      "docs/CODEOWNERS": "models.yaml @alice\n"})
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    code, _status = run_guard(gh)
    assert code == 0


def test_reviews_404_fails_closed(gh: FakeGitHub) -> None:
    commits(gh)
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    gh.fail("GET", r"/pulls/7/reviews$", 404, "Not Found")
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; GitHub API 404 listing reviews: Not Found"
    )


def test_contents_403_fails_closed(gh: FakeGitHub) -> None:
    commits(gh)
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    gh.fail("GET", r"/contents/", 403, "Resource not accessible by integration")
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: GitHub API 403 reading gate.yaml at bbbbbbb: "
        "Resource not accessible by integration"
    )


def test_invalid_registry_at_head_fails_closed(gh: FakeGitHub) -> None:
    commits(gh, head={"models.yaml": "models:\n  - id: x\n    id: y\n"})
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"].startswith("blocked: models.yaml at head ccccccc is invalid")


def test_guard_never_reads_local_registry(gh: FakeGitHub, tmp_path: Path) -> None:
    # A models.yaml in the working directory (the base checkout) is not what is judged.
    (tmp_path / "models.yaml").write_text(MODELS_BASE)
    commits(gh)
    code, _status = run_guard(gh)
    assert code == 1
    refs = [p for _m, p in gh.requests if "/contents/models.yaml" in p]
    assert refs == [f"/repos/{REPO}/contents/models.yaml?ref={BASE}",
                    f"/repos/{REPO}/contents/models.yaml?ref={HEAD}"]


def test_pr_option_without_event(gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    commits(gh)
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    monkeypatch.delenv("GITHUB_EVENT_PATH")
    assert run_gate("guard", "--pr", str(PR)) == 0
    assert gh.statuses(REPO, HEAD)[-1]["state"] == "success"


def test_missing_token_blocks_without_traceback(gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    commits(gh)
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.delenv("GH_TOKEN", raising=False)
    assert run_gate("guard") == 1
    assert "GITHUB_TOKEN is not set" in capsys.readouterr().out


def test_unreadable_head_commit_fails_closed(gh: FakeGitHub) -> None:
    # Were a 404 on models.yaml read as "absent at head", nothing would become adopted: a pass.
    commits(gh)
    gh.fail("GET", rf"/commits/{HEAD}$", 404, "No commit found for SHA")
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: GitHub API 404 reading the head commit ccccccc: No commit found for SHA"
    )


# --- attacks (issue 9): each would pass "no model becomes adopted" without the guard's rule --


MOVED_GATE_YAML = GATE_YAML + "suite:\n  registry: registry/models.yaml\n"


def test_attack_registry_moved_to_a_new_file_needs_owner(gh: FakeGitHub) -> None:
    # models.yaml is left untouched; gate.yaml at head points at a new registry that adopts.
    commits(gh, head={"gate.yaml": MOVED_GATE_YAML, "models.yaml": MODELS_BASE,
                      "registry/models.yaml": MODELS_HEAD})
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; suite.registry moves from models.yaml to "
        "registry/models.yaml; no approval by a code owner (@ali…"
    )


def test_attack_registry_moved_without_new_adoption_still_needs_owner(gh: FakeGitHub) -> None:
    commits(gh, head={"gate.yaml": MOVED_GATE_YAML, "models.yaml": None,
                      "registry/models.yaml": MODELS_BASE})
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: suite.registry moves from models.yaml to registry/models.yaml; "
        "no approval by a code owner (@alice @carol)"
    )


def test_moved_registry_approved_by_owner_allows(gh: FakeGitHub) -> None:
    commits(gh, head={"gate.yaml": MOVED_GATE_YAML, "registry/models.yaml": MODELS_BASE})
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 0
    assert status["description"] == (
        "allowed: suite.registry moves from models.yaml to registry/models.yaml; approved by "
        "code owner alice at ccccccc"
    )


def test_attack_registry_renamed_needs_owner(gh: FakeGitHub) -> None:
    # git mv models.yaml models.yml: gate.yaml unchanged, the registry is gone at head.
    commits(gh, head={"models.yaml": None, "models.yml": MODELS_HEAD})
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/old-model is adopted and is removed; models.yaml is missing at head "
        "(renamed or deleted); no approval by a code owner (@ali…"
    )


def test_attack_gate_yaml_deleted_needs_owner(gh: FakeGitHub) -> None:
    commits(gh, head={"gate.yaml": None, "models.yaml": MODELS_BASE})
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: gate.yaml is missing at head; no approval by a code owner (@alice @carol)"
    )


def test_attack_provider_swap_of_adopted_entry_is_an_adoption(gh: FakeGitHub) -> None:
    swapped = MODELS_BASE.replace("provider: mock\n    evaluation_status: adopted",
                                  "provider: cheap-reseller\n    evaluation_status: adopted")
    commits(gh, head={"models.yaml": swapped})
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/old-model is adopted and changes provider; no approval by a code owner "
        "(@alice @carol)"
    )


def test_attack_id_swap_of_adopted_entry_is_an_adoption(gh: FakeGitHub) -> None:
    commits(gh, head={"models.yaml": MODELS_BASE.replace("vendor/old-model", "vendor/other")})
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"].startswith("blocked: vendor/other becomes adopted;")


def test_notes_and_last_run_of_adopted_entry_are_free(gh: FakeGitHub) -> None:
    noted = MODELS_BASE.replace(
        "provider: mock\n    evaluation_status: adopted",
        "provider: mock\n    evaluation_status: adopted\n    notes: fine\n    last_run: r-1",
    )
    commits(gh, head={"models.yaml": noted})
    code, status = run_guard(gh)
    assert code == 0
    assert status["description"] == "no model becomes adopted"


def test_attack_one_owner_approves_another_requests_changes(gh: FakeGitHub) -> None:
    commits(gh, base={".github/CODEOWNERS": "models.yaml @alice @dora\n"})
    gh.add_review(REPO, PR, "dora", "CHANGES_REQUESTED", OLD)  # on an older commit: still open
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; code owner dora requested changes"
    )


def test_change_request_by_non_owner_does_not_block_an_owner_approval(gh: FakeGitHub) -> None:
    commits(gh)
    gh.add_review(REPO, PR, "bob", "CHANGES_REQUESTED", HEAD)
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 0
    assert status["description"].startswith("allowed: vendor/new-model becomes adopted;")


def test_attack_team_owner_change_request_unreadable_blocks(gh: FakeGitHub) -> None:
    commits(gh, base={".github/CODEOWNERS": "models.yaml @alice @acme/model-owners\n"})
    gh.fail("GET", r"/memberships/", 403, "Resource not accessible by integration")
    gh.add_review(REPO, PR, "zoe", "CHANGES_REQUESTED", HEAD)
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: vendor/new-model becomes adopted; zoe requested changes and may be a code owner "
        "(cannot read @acme/model-owners membership (HTTP 4…"
    )
    assert "Members: read" in Path("summary.md").read_text()


def test_attack_hostile_model_id_is_neutralised(gh: FakeGitHub) -> None:
    hostile = ("@acme/core <img src=x onerror=alert(1)> [x](http://evil.example) "
               "<!-- gate-report -->")
    added = MODELS_BASE + f"  - id: {json.dumps(hostile)}\n    provider: mock\n" \
        "    evaluation_status: adopted\n"
    commits(gh, head={"models.yaml": added})
    code, status = run_guard(gh)
    assert code == 1
    description = status["description"]
    assert "@acme" not in description
    assert "http://" not in description
    summary = Path("summary.md").read_text()
    for raw in ("@acme/core", "<img", "http://", "<!-- gate-report"):
        assert raw not in summary
    assert not re.search(r"(?<!\\)\]\(", summary)  # no link syntax left unescaped


def test_review_event_via_workflow_run_judges_the_pr_from_the_api(
    gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # adoption-guard-review.yml (default branch) runs on workflow_run after the unprivileged
    # pull_request_review workflow; the PR number comes from its artifact, as --pr. Nothing in
    # the payload is trusted: shas and author come from the API.
    commits(gh)
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    event = json.loads((WEBHOOKS
                        / "workflow_run.completed.json").read_text())
    event["workflow_run"]["event"] = "pull_request_review"
    event["workflow_run"]["head_sha"] = "d" * 40  # a lie: must not be where the status goes
    (tmp_path / "event.json").write_text(json.dumps(event))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(tmp_path / "event.json"))
    code = run_gate("guard", "--pr", str(PR))
    assert code == 0
    pending, status = gh.statuses(REPO)
    assert pending["state"] == "pending"
    assert status["sha"] == HEAD
    assert status["description"] == (
        "allowed: vendor/new-model becomes adopted; approved by code owner alice at ccccccc"
    )


def test_attack_registry_outside_the_repository_fails_closed(gh: FakeGitHub) -> None:
    commits(gh, head={"gate.yaml": GATE_YAML + "suite:\n  registry: ../elsewhere/models.yaml\n"})
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    code, status = run_guard(gh)
    assert code == 1
    assert status["description"] == (
        "blocked: gate.yaml at head ccccccc is invalid (line 6: suite.registry "
        "'../elsewhere/models.yaml' has a `..` component (a symbo…)"
    )
