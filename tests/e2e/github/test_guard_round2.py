"""The second round of attacks on ``gate guard`` (issue 21), one class at a time, against the
local GitHub API: several PRs per head sha, base branches, open and closed PRs, collaborator
and team permissions, GitHub's symlink rules. Each test names the class it covers
(docs/security.md, "The adoption guard, second round")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_github import (
    GATE_YAML,
    REGISTRY_ADOPTED,
    REGISTRY_PENDING,
    FakeGitHub,
    load_event,
    pull_event,
    run_gate,
    use_fake_github,
)
from github import Auth, Github

import gate.github.guard as guard
from gate.github.guard import CONTEXT

REPO = "acme/agents"
PR, DECOY_PR = 7, 8
AUTHOR = "mallory"
BASE = "b" * 40
HEAD = "c" * 40
DECOY = "d" * 40
NEWBASE = "e" * 40
TOKEN = "ghs_round_two_token_0123456789abc"

PENDING, ADOPTED = REGISTRY_PENDING, REGISTRY_ADOPTED
CODEOWNERS = "*  @acme/maintainers\n/models.yaml  @alice\n"


def github_scenario(fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This module's GitHub (the ``gh`` fixture of tests/conftest.py serves it)."""
    fake.add_token(TOKEN, "gate-guard[bot]", installation=True)
    fake.add_repo(REPO)
    for login in ("alice", "dana"):
        fake.set_permission(REPO, login, "write")
    fake.add_team("acme", "maintainers", {"zed": "active"})
    fake.set_team_permission(REPO, "acme", "maintainers", "push")
    event = pull_event("pull_request.synchronize", repo=REPO, number=PR, author=AUTHOR,
                       base_sha=BASE, head_sha=HEAD)
    use_fake_github(monkeypatch, fake, tmp_path, token=TOKEN, repo=REPO, event=event)


def files(**changes: str | None) -> dict[str, str]:
    out: dict[str, str | None] = {"gate.yaml": GATE_YAML, "models.yaml": PENDING,
                                  ".github/CODEOWNERS": CODEOWNERS}
    out.update({k.replace("__", "/").replace("_dot_", "."): v for k, v in changes.items()})
    return {k: v for k, v in out.items() if v is not None}


def setup(fake: FakeGitHub, head: dict[str, str], base: dict[str, str] | None = None,
          symlinks: dict[str, str] | None = None) -> None:
    fake.add_commit(REPO, BASE, base or files())
    fake.add_commit(REPO, HEAD, head, parents=[BASE], symlinks=symlinks)
    fake.add_pull(REPO, PR, AUTHOR, BASE, HEAD, head_ref="evil")


def guard_pr(fake: FakeGitHub, *args: str) -> tuple[int, dict[str, Any] | None]:
    code = run_gate("guard", *args)
    return code, fake.latest_status(REPO, HEAD, CONTEXT)


def description(fake: FakeGitHub, *args: str) -> str:
    code, status = guard_pr(fake, *args)
    assert status is not None
    assert status["state"] == ("success" if code == 0 else "failure")
    return str(status["description"])


# --- class 1: one head commit, several PRs ---------------------------------------------------


def test_class1_pr_into_an_unprotected_branch_publishes_nothing(gh: FakeGitHub) -> None:
    setup(gh, files(models_dot_yaml=ADOPTED))
    gh.add_commit(REPO, DECOY, files(models_dot_yaml=ADOPTED))  # decoy already holds the flip
    gh.add_pull(REPO, DECOY_PR, AUTHOR, DECOY, HEAD, base_ref="decoy", head_ref="evil")
    code, status = guard_pr(gh, "--pr", str(PR))
    assert code == 1
    assert status is not None
    assert status["state"] == "failure"
    before = len(gh.statuses(REPO, HEAD))
    assert run_gate("guard", "--pr", str(DECOY_PR)) == 0
    assert len(gh.statuses(REPO, HEAD)) == before  # nothing published for PR 8
    assert gh.latest_status(REPO, HEAD, CONTEXT) == status
    # what branch protection reads for PR 7: the combined status of the shared commit
    client = Github(base_url=gh.url, auth=Auth.Token(TOKEN))
    combined = client.get_repo(REPO).get_commit(HEAD).get_combined_status()
    assert combined.state == "failure"
    assert [(s.context, s.state) for s in combined.statuses] == [(CONTEXT, "failure")]


def test_class1_closed_pr_publishes_nothing(gh: FakeGitHub) -> None:
    setup(gh, files(models_dot_yaml=ADOPTED))
    gh.repos[REPO].pulls[PR].state = "closed"
    assert run_gate("guard", "--pr", str(PR)) == 0
    assert gh.statuses(REPO, HEAD) == []


def test_class1_every_protected_pr_sharing_the_head_must_pass(gh: FakeGitHub) -> None:
    # `release` is protected too and already holds the flip: PR 8 alone says "no model
    # becomes adopted"; the status on the shared sha must still be PR 7's failure.
    setup(gh, files(models_dot_yaml=ADOPTED))
    gh.add_commit(REPO, DECOY, files(models_dot_yaml=ADOPTED))
    gh.repos[REPO].parents[HEAD] = [BASE, DECOY]
    gh.add_pull(REPO, DECOY_PR, AUTHOR, DECOY, HEAD, base_ref="release", head_ref="evil")
    text = description(gh, "--pr", str(DECOY_PR), "--protected-branch", "release")
    assert text.startswith("PR #7 blocked: vendor/new-model becomes adopted;")


# --- class 9: races and crashes ---------------------------------------------------------------


def test_class9_review_arriving_while_judging_is_not_overwritten(gh: FakeGitHub) -> None:
    setup(gh, files(models_dot_yaml=ADOPTED))
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    seen: list[str] = []

    def owner_objects_meanwhile(method: str, path: str) -> None:
        if method == "GET" and path.endswith(f"/pulls/{PR}/reviews"):
            seen.append(path)
            if len(seen) == 2:  # the decision's own read: the owner now requests changes
                gh.add_review(REPO, PR, "alice", "CHANGES_REQUESTED", HEAD)

    gh.before_request = owner_objects_meanwhile
    code, status = guard_pr(gh)
    assert code == 1
    assert status is not None
    assert status["state"] == "pending"
    assert [s["state"] for s in gh.statuses(REPO, HEAD)] == ["pending"]


def test_class9_any_crash_publishes_failure_with_its_cause(
    gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(gh, files(models_dot_yaml=ADOPTED))
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    assert guard_pr(gh)[0] == 0  # an earlier success

    def boom(*_args: object) -> None:
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(guard, "owners_at_base", boom)
    code, status = guard_pr(gh)
    assert code == 1
    assert status is not None
    assert status["state"] == "failure"
    assert status["description"] == (
        "blocked: the guard failed (RuntimeError: parser exploded)")


def test_class9_codeowners_line_that_crashed_the_parser_is_skipped(gh: FakeGitHub) -> None:
    owners = "/docs/[draft @acme/core\n/models.yaml @alice\n"
    setup(gh, files(models_dot_yaml=ADOPTED, _dot_github__CODEOWNERS=owners),
          base=files(_dot_github__CODEOWNERS=owners))
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    assert description(gh).startswith("allowed: vendor/new-model becomes adopted; approved by "
                                      "code owner alice")


# --- class 3: the merge that will happen ------------------------------------------------------


def test_class3_a_pr_behind_its_base_is_refused(gh: FakeGitHub) -> None:
    # PR 7 renames a pending entry: harmless against its old base. Meanwhile an approved PR
    # flipped that entry to adopted on main; merged together, `evil/model` would be adopted.
    renamed = PENDING.replace("vendor/new-model", "evil/model")
    setup(gh, files(models_dot_yaml=renamed))
    gh.add_commit(REPO, NEWBASE, files(models_dot_yaml=ADOPTED), parents=[BASE])
    gh.repos[REPO].branches["main"] = NEWBASE
    assert description(gh) == (
        "blocked: the PR is behind main (eeeeeee): update the branch; the guard judges the "
        "merge with the current base")


def test_class3_judged_against_the_current_tip_once_up_to_date(gh: FakeGitHub) -> None:
    renamed = PENDING.replace("vendor/new-model", "evil/model")
    merged = ADOPTED.replace("vendor/new-model", "evil/model")  # git's clean 3-way merge
    setup(gh, files(models_dot_yaml=renamed))
    gh.add_commit(REPO, NEWBASE, files(models_dot_yaml=ADOPTED), parents=[BASE])
    gh.repos[REPO].branches["main"] = NEWBASE
    gh.add_commit(REPO, HEAD, files(models_dot_yaml=merged), parents=[DECOY, NEWBASE])
    gh.add_review(REPO, PR, "bob", "APPROVED", HEAD)
    text = description(gh)
    assert text.startswith("blocked: evil/model becomes adopted; vendor/new-model is adopted "
                           "and is removed;")


# --- class 2: the blob is not what the runtime reads ------------------------------------------


def test_class2_gitattributes_encoding_on_the_registry_needs_an_owner(gh: FakeGitHub) -> None:
    attrs = "models.yaml working-tree-encoding=SHIFT-JIS\n"
    setup(gh, files(_dot_gitattributes=attrs,
                    models_dot_yaml=PENDING + '    notes: "a\u00a5"\n'))
    assert description(gh) == (
        "blocked: .gitattributes changes working-tree-encoding of models.yaml; no approval by "
        "a code owner (@alice)")


@pytest.mark.parametrize("attrs", [
    "*.yaml filter=evil\n",
    "[attr]plain -text ident\n*.y*ml plain\n",
    "*  eol=crlf\n",
    "models.* text\n",
])
def test_class2_every_byte_changing_attribute_needs_an_owner(gh: FakeGitHub,
                                                              attrs: str) -> None:
    setup(gh, files(_dot_gitattributes=attrs))
    assert description(gh).startswith("blocked: .gitattributes changes ")


def test_class2_unrelated_attributes_are_free(gh: FakeGitHub) -> None:
    setup(gh, files(_dot_gitattributes="*.png binary\ndocs/** linguist-documentation\n"))
    assert description(gh) == "no model becomes adopted"


# --- class 4: paths that mean one thing to the guard, another to the loader --------------------


def test_class4_dotdot_in_the_registry_path_is_refused(gh: FakeGitHub) -> None:
    setup(gh, files(gate_dot_yaml=GATE_YAML + "suite:\n  registry: lnk/../models.yaml\n",
                    sub__models_dot_yaml=ADOPTED), symlinks={"lnk": "sub/dir"})
    assert description(gh).startswith(
        "blocked: gate.yaml at head ccccccc is invalid (line 6: suite.registry "
        "'lnk/../models.yaml' has a `..` component")


def test_class4_registry_behind_a_symlinked_directory_is_refused(gh: FakeGitHub) -> None:
    moved = GATE_YAML + "suite:\n  registry: reg/models.yaml\n"
    base = files(gate_dot_yaml=moved, models_dot_yaml=None)  # no registry at base yet
    setup(gh, files(gate_dot_yaml=moved, models_dot_yaml=None, real__models_dot_yaml=ADOPTED),
          base=base, symlinks={"reg": "real"})
    assert description(gh) == (
        "blocked: reg/models.yaml at ccccccc goes through the symbolic link reg")


def test_class4_registry_that_is_a_symlink_is_refused(gh: FakeGitHub) -> None:
    setup(gh, files(models_dot_yaml=None, other_dot_yaml=ADOPTED),
          symlinks={"models.yaml": "other.yaml"})
    assert description(gh) == "blocked: models.yaml at ccccccc is a symbolic link"


# --- class 5: CODEOWNERS as GitHub reads it ----------------------------------------------------


@pytest.mark.parametrize("owners", [
    "/models.yaml @dana  # was @mallory\n",
    "/models.yaml @dana\n# moved\u2028/models.yaml @mallory\n",
    "/models.yaml @dana\n# moved\u0085/models.yaml @mallory\n",
    "/models.yaml @dana\n# moved\f/models.yaml @mallory\n",
    "/models.yaml @dana\n/models.yaml\u00a0@mallory\n",
    "/models.yaml @dana\n/[m]odels.yaml @mallory\n",
    "/models.yaml @dana\n!/models.yaml @mallory\n",
])
def test_class5_lines_github_does_not_see_give_no_owner(gh: FakeGitHub, owners: str) -> None:
    setup(gh, files(models_dot_yaml=ADOPTED), base=files(_dot_github__CODEOWNERS=owners))
    gh.set_permission(REPO, "mallory", "write")
    gh.add_review(REPO, PR, "mallory", "APPROVED", HEAD)
    gh.repos[REPO].pulls[PR].author = "carol"
    text = description(gh)
    assert text == ("blocked: vendor/new-model becomes adopted; approval by mallory is not "
                    "from a code owner (@dana)")


def test_class5_kelvin_sign_in_a_login_fails_closed(gh: FakeGitHub) -> None:
    owners = "/models.yaml @\u212aelvin\n"  # .lower() folds it to "kelvin"
    setup(gh, files(models_dot_yaml=ADOPTED), base=files(_dot_github__CODEOWNERS=owners))
    gh.set_permission(REPO, "kelvin", "write")
    gh.add_review(REPO, PR, "kelvin", "APPROVED", HEAD)
    assert description(gh) == (
        "blocked: vendor/new-model becomes adopted; .github/CODEOWNERS:1 at base has an owner "
        "GitHub reports as invalid (1 of 1): fail closed")


# --- class 6: owners GitHub would not count -----------------------------------------------------


def test_class6_owner_with_read_permission_does_not_count(gh: FakeGitHub) -> None:
    setup(gh, files(models_dot_yaml=ADOPTED))
    gh.set_permission(REPO, "alice", "read")
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    assert description(gh) == (
        "blocked: vendor/new-model becomes adopted; approval by alice is not from a code owner "
        "(alice has only read permission)")


def test_class6_team_without_write_permission_does_not_count(gh: FakeGitHub) -> None:
    owners = "/models.yaml @acme/readers\n"
    setup(gh, files(models_dot_yaml=ADOPTED), base=files(_dot_github__CODEOWNERS=owners))
    gh.add_team("acme", "readers", {"rita": "active"})
    gh.set_team_permission(REPO, "acme", "readers", "pull")
    gh.add_review(REPO, PR, "rita", "APPROVED", HEAD)
    assert description(gh) == (
        "blocked: vendor/new-model becomes adopted; approval by rita is not from a code owner "
        "(@acme/readers lacks write permission)")


# --- classes 7 and 8: the provider under an adopted entry; de-adoption and removal --------------


def test_class7_provider_of_an_adopted_entry_redefined_needs_an_owner(gh: FakeGitHub) -> None:
    evil = ("version: 1\nproviders:\n  mock:\n    type: openai\n"
            "    base_url: https://evil.example/v1\n    api_key_env: OPENROUTER_API_KEY\n")
    setup(gh, files(gate_dot_yaml=evil))
    assert description(gh) == (
        "blocked: vendor/old-model is adopted and its provider mock changes type, base_url, "
        "api_key_env; no approval by a code owner (@alice)")


def test_class8_de_adoption_needs_an_owner(gh: FakeGitHub) -> None:
    setup(gh, files(models_dot_yaml=PENDING.replace("evaluation_status: adopted",
                                                    "evaluation_status: rejected")))
    assert description(gh) == (
        "blocked: vendor/old-model is no longer adopted (rejected); no approval by a code owner "
        "(@alice)")


def test_class8_removal_needs_an_owner(gh: FakeGitHub) -> None:
    removed = "models:\n" + PENDING.split("\n", 4)[4]
    setup(gh, files(models_dot_yaml=removed))
    assert description(gh) == (
        "blocked: vendor/old-model is adopted and is removed; no approval by a code owner "
        "(@alice)")


# --- class 3 under a merge queue: the merge-group commit is judged ------------------------------

GROUP = "f" * 40


def merge_group_event(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: FakeGitHub,
                      number: int) -> None:
    event = load_event("merge_group.checks_requested")
    event["merge_group"].update(
        head_sha=GROUP, base_sha=BASE, base_ref="refs/heads/main",
        head_ref=f"refs/heads/gh-readonly-queue/main/pr-{number}-{BASE}")
    event["repository"]["full_name"] = REPO
    use_fake_github(monkeypatch, fake, tmp_path, token=TOKEN, repo=REPO, event=event)


def group_status(fake: FakeGitHub) -> tuple[int, str]:
    code = run_gate("guard")
    states = [s["state"] for s in fake.statuses(REPO, GROUP)]
    assert states == ["pending", "success" if code == 0 else "failure"]
    return code, str(fake.statuses(REPO, GROUP)[-1]["description"])


def test_class3_merge_group_of_the_approved_pr_alone_is_allowed(
    gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    setup(gh, files(models_dot_yaml=ADOPTED))
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    gh.add_commit(REPO, GROUP, files(models_dot_yaml=ADOPTED), parents=[BASE, HEAD])
    merge_group_event(monkeypatch, tmp_path, gh, PR)
    code, text = group_status(gh)
    assert code == 0
    assert text == ("PR #7 allowed: vendor/new-model becomes adopted; approved by code owner "
                    "alice at ccccccc")


def test_class3_merge_group_holding_more_than_the_pr_is_refused(
    gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # PR 7 flips vendor/new-model (approved); a PR queued ahead of it renamed that entry's id.
    # Each alone is fine; the group commit, git's clean merge of both, adopts `evil/model`.
    setup(gh, files(models_dot_yaml=ADOPTED))
    gh.add_review(REPO, PR, "alice", "APPROVED", HEAD)
    merged = ADOPTED.replace("vendor/new-model", "evil/model")
    gh.add_commit(REPO, GROUP, files(models_dot_yaml=merged), parents=[BASE, HEAD])
    merge_group_event(monkeypatch, tmp_path, gh, PR)
    code, text = group_status(gh)
    assert code == 1
    assert text.startswith("blocked: the merge group changes more than PR #7 (evil/model "
                           "becomes adopted")


def test_class3_merge_group_without_protected_changes_passes(
    gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    setup(gh, files(models_dot_yaml=PENDING + "# a comment\n"))
    gh.add_commit(REPO, GROUP, files(models_dot_yaml=PENDING + "# a comment\n"),
                  parents=[BASE, HEAD])
    merge_group_event(monkeypatch, tmp_path, gh, PR)
    assert group_status(gh) == (0, "no model becomes adopted")
