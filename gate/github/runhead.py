"""Which pull request a workflow run is for, from the API, never from an artifact.

``gate comment`` posts from ``workflow_run`` (``gate-comment.yml``): the event, which GitHub
writes, names the triggering run's head commit, head repository and head branch. A report
from the run's artifact names its PR, and is posted only if that PR's head is the run's
(``check_head``): a forged number cannot put one PR's report on another PR, even one sharing
the head commit. A state without a report (evaluating, no report) has no artifact: it goes to
the one open PR whose head is the run's (``pull_of_run``), or nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from github import GithubException

from gate.errors import UntrustedArtifactError
from gate.github.context import client
from gate.report.neutralize import neutralize


@dataclass(frozen=True)
class RunHead:
    """What GitHub says the triggering run was for (from the event, never the artifact)."""

    sha: str
    repo: str | None = None  # workflow_run.head_repository.full_name
    branch: str | None = None  # workflow_run.head_branch


def check_head(repo: Any, number: int, run: RunHead) -> None:
    """Refuse unless ``number`` is a pull request of ``repo`` whose head is the run's: the same
    commit, and (when given) the same head repository and branch. Read from the API: the
    artifact and the payload's PR list are not trusted. Two PRs can share a head commit (one
    into main, one into another branch, or from a fork): the repository and branch tell them
    apart, so one PR's report never lands on the other."""
    try:
        pull = repo.get_pull(number)
    except GithubException as exc:
        if exc.status == 404:
            raise UntrustedArtifactError(
                f"#{number} is not a pull request of {repo.full_name}") from None
        raise
    actual = (pull.head.sha or "").lower()
    if actual != run.sha.lower():
        raise UntrustedArtifactError(
            f"PR #{number}'s head is {actual[:12] or '?'}, the run was for {run.sha[:12]}: "
            "not that PR's run (a forged PR number, or the PR has moved on and its newer run "
            "posts)")
    head_repo = pull.head.repo.full_name if pull.head.repo is not None else None
    for what, expected, found in (("repository", run.repo, head_repo),
                                  ("branch", run.branch, pull.head.ref)):
        if expected is not None and expected != found:
            raise UntrustedArtifactError(
                f"PR #{number}'s head {what} is {neutralize(str(found), context='plain')}, "
                f"the run was for {neutralize(expected, context='plain')}: not that PR's run")


def verify_head(repo_name: str, number: int, run: RunHead) -> None:
    """``check_head`` with a client of its own."""
    gh = client()
    try:
        check_head(gh.get_repo(repo_name), number, run)
    finally:
        gh.close()


def find_pulls(repo: Any, run: RunHead) -> list[int]:
    """The open pull requests of ``repo`` whose head is the run's: the same commit, head
    repository and branch (read from the API; ``head=owner:branch`` narrows the listing)."""
    owner = run.repo.split("/", 1)[0] if run.repo else None
    narrow = {"head": f"{owner}:{run.branch}"} if owner and run.branch else {}
    found = []
    for pull in repo.get_pulls(state="open", **narrow):
        head_repo = pull.head.repo.full_name if pull.head.repo is not None else None
        if ((pull.head.sha or "").lower() == run.sha.lower()
                and run.repo in (None, head_repo) and run.branch in (None, pull.head.ref)):
            found.append(pull.number)
    return sorted(found)


def pull_of_run(repo_name: str, run: RunHead) -> int | None:
    """The one open PR whose head is the run's, or None (printing why nothing is posted):
    none (the PR moved on to a newer commit, or was closed) or several (ambiguous)."""
    gh = client()
    try:
        numbers = find_pulls(gh.get_repo(repo_name), run)
    finally:
        gh.close()
    if len(numbers) == 1:
        return numbers[0]
    where = f"head {run.sha[:12]}" + (f" of {neutralize(run.repo, context='plain')}"
                                      if run.repo else "")
    if not numbers:
        print(f"gate comment: nothing posted: no open pull request has {where} (it has moved "
              "on to a newer commit, or was closed)")
    else:
        print(f"gate comment: nothing posted: {len(numbers)} open pull requests have {where} "
              f"(#{', #'.join(map(str, numbers))}); the run's own result names its PR")
    return None
