"""``gate guard``: no model becomes ``adopted`` without a code owner's approval of the head commit.

Branch protection's "require review from Code Owners" is per file; this is the field-level
check for ``evaluation_status: adopted``. It runs under ``pull_request_target`` (and
``pull_request_review``) and never checks out or runs the PR's code: every file at the PR's
refs is read through the API (``GET /repos/{o}/{r}/contents/{path}?ref=sha``).

1. models.yaml at base and head: the entries whose status becomes ``adopted`` (new entries
   with status adopted included). None: success, "no model becomes adopted".
2. CODEOWNERS at the *base* sha (``.github/CODEOWNERS``, ``CODEOWNERS``, ``docs/CODEOWNERS``,
   first found; a PR can edit its own copy, so the head's never counts); the owners of the
   registry path, last matching rule wins. No CODEOWNERS, no rule, or no owner: fail closed.
3. Each reviewer's latest opinionated review (APPROVED, CHANGES_REQUESTED, DISMISSED;
   COMMENTED does not override). Allowed when one is APPROVED, by someone other than the PR
   author, who is an owner (a user by login, case-insensitively; a team ``@org/team`` through
   an active team membership, which needs a token with org members:read), for the head sha.
4. Any API failure (404, 403, ...) or unreadable file: fail closed, saying why.

The decision is published as a commit status on the head sha, context ``gate/adoption-guard``,
with a description of at most 140 characters saying exactly why; printed; and written to the
job summary. Exit 0 allowed, 1 blocked.
"""

from __future__ import annotations

import base64
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeowners import CodeOwners
from github import Github, GithubException
from requests import RequestException

from gate.config.schema import Registry
from gate.config.yamlio import model_from_doc, parse_yaml
from gate.errors import Blocked, ConfigError, GitHubContextError
from gate.github.context import (
    PullRef,
    client,
    describe_api_error,
    event_payload,
    load_suite,
    pull_from_payload,
    repository,
    run_url,
    step_summary,
)

CONTEXT = "gate/adoption-guard"
DESCRIPTION_LIMIT = 140
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
OPINIONATED = ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")


@dataclass
class Decision:
    allowed: bool
    reason: str
    details: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "success" if self.allowed else "failure"

    @property
    def description(self) -> str:
        return shorten(self.reason, DESCRIPTION_LIMIT)


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def short_sha(sha: str | None) -> str:
    return (sha or "?")[:7]


def _names(ids: list[str]) -> str:
    verb = "becomes" if len(ids) == 1 else "become"
    shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
    return f"{shown} {verb} adopted"


# --- reading files at a ref through the API -----------------------------------------------


def read_at(repo: Any, path: str, sha: str) -> str | None:
    """A file's text at a sha through the contents API; None on 404. Other errors: Blocked."""
    try:
        item = repo.get_contents(path, ref=sha)
    except GithubException as exc:
        if exc.status == 404:
            return None
        raise Blocked(describe_api_error(exc, f"reading {path} at {short_sha(sha)}")) from None
    if isinstance(item, list) or getattr(item, "type", "file") != "file":
        raise Blocked(f"{path} at {short_sha(sha)} is a directory, not a file")
    raw = item.content
    if item.encoding != "base64" or raw is None:
        raise Blocked(f"{path} at {short_sha(sha)}: unexpected encoding {item.encoding!r}")
    try:
        return base64.b64decode(raw).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise Blocked(f"{path} at {short_sha(sha)} is not UTF-8 text") from None


def require_commit(gh: Github, repo_name: str, sha: str, label: str) -> None:
    try:
        gh.requester.requestJsonAndCheck("GET", f"/repos/{repo_name}/commits/{sha}")
    except GithubException as exc:
        why = describe_api_error(exc, f"reading the {label} commit {short_sha(sha)}")
        raise Blocked(why) from None


def registry_at(repo: Any, path: str, sha: str, label: str) -> Registry:
    text = read_at(repo, path, sha)
    if text is None:
        return Registry(models=[])
    try:
        return model_from_doc(Registry, parse_yaml(text, f"{path}@{label}"))
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else f"{path}@{label}"
        raise Blocked(f"{path} at {label} is invalid ({first})") from None


def becoming_adopted(base: Registry, head: Registry) -> list[str]:
    before = {m.id: m.evaluation_status for m in base.models}
    return [
        m.id for m in head.models
        if m.evaluation_status == "adopted" and before.get(m.id) != "adopted"
    ]


# --- owners and reviews -------------------------------------------------------------------


@dataclass(frozen=True)
class Owners:
    users: frozenset[str]  # lower-cased logins
    teams: tuple[tuple[str, str], ...]  # (org, team_slug)
    shown: str  # as written in CODEOWNERS
    source: str  # which CODEOWNERS file, at which line


def owners_at_base(repo: Any, base_sha: str, registry_path: str) -> Owners:
    for candidate in CODEOWNERS_PATHS:
        text = read_at(repo, candidate, base_sha)
        if text is not None:
            break
    else:
        raise Blocked(
            f"no CODEOWNERS at base {short_sha(base_sha)} (.github/, root, docs/): fail closed"
        )
    owners, line, _pattern, _section = CodeOwners(text).matching_line(registry_path)
    users: set[str] = set()
    teams: list[tuple[str, str]] = []
    for kind, name in owners:
        if kind == "USERNAME":
            users.add(name.lstrip("@").lower())
        elif kind == "TEAM":
            org, _, slug = name.lstrip("@").partition("/")
            teams.append((org, slug))
    if line is None:
        raise Blocked(f"no CODEOWNERS rule at base matches {registry_path}: fail closed")
    if not users and not teams:
        raise Blocked(
            f"{candidate}:{line} at base gives {registry_path} no user or team owner: fail closed"
        )
    return Owners(
        users=frozenset(users),
        teams=tuple(teams),
        shown=" ".join(name for _kind, name in owners),
        source=f"{candidate}:{line}",
    )


def latest_opinions(reviews: list[Any]) -> dict[str, Any]:
    """Each reviewer's latest APPROVED / CHANGES_REQUESTED / DISMISSED review (by login)."""
    def key(item: tuple[int, Any]) -> tuple[float, int]:
        index, review = item
        when = review.submitted_at
        return (when.timestamp() if when is not None else float("inf"), index)

    latest: dict[str, Any] = {}
    for _i, review in sorted(enumerate(reviews), key=key):
        if review.user is None or review.state not in OPINIONATED:
            continue
        latest[review.user.login.lower()] = review
    return latest


def team_member(gh: Github, org: str, slug: str, login: str) -> tuple[bool, str]:
    """(is an active member, why not)."""
    try:
        _headers, data = gh.requester.requestJsonAndCheck(
            "GET", f"/orgs/{org}/teams/{slug}/memberships/{login}"
        )
    except GithubException as exc:
        if exc.status == 404:
            return False, f"not a member of @{org}/{slug}"
        return False, describe_api_error(exc, f"checking @{org}/{slug} membership") + (
            " (the token needs org members:read)" if exc.status in (401, 403) else ""
        )
    state = data.get("state") if isinstance(data, dict) else None
    if state == "active":
        return True, ""
    return False, f"membership of @{org}/{slug} is {state or 'unknown'}, not active"


def judge_reviews(
    gh: Github, reviews: list[Any], owners: Owners, author: str, head_sha: str
) -> tuple[str | None, list[str]]:
    """(login of a qualifying approver or None, why each other review does not count)."""
    notes: list[str] = []
    for login, review in latest_opinions(reviews).items():
        name = review.user.login
        if review.state == "DISMISSED":
            notes.append(f"review by {name} was dismissed")
            continue
        if review.state == "CHANGES_REQUESTED":
            notes.append(f"{name} requested changes")
            continue
        if login == author.lower():
            notes.append(f"approval by {name} does not count: {name} is the PR author")
            continue
        if review.commit_id != head_sha:
            notes.append(f"approval by {name} is for an older commit "
                         f"({short_sha(review.commit_id)}, head is {short_sha(head_sha)})")
            continue
        if login in owners.users:
            return name, notes
        reasons: list[str] = []
        for org, slug in owners.teams:
            ok, why = team_member(gh, org, slug, name)
            if ok:
                return name, notes
            reasons.append(why)
        detail = "; ".join(reasons) if reasons else owners.shown
        notes.append(f"approval by {name} is not from a code owner ({detail})")
    return None, notes


# --- the decision -------------------------------------------------------------------------


def decide(gh: Github, repo_name: str, ref: PullRef, registry_path: str) -> tuple[Decision, str]:
    """(decision, head sha to publish on)."""
    head_sha = ref.head_sha or ""
    try:
        repo = gh.get_repo(repo_name)
        pull = repo.get_pull(ref.number)
        head_sha = ref.head_sha or pull.head.sha
        base_sha = ref.base_sha or pull.base.sha
        author = ref.author or pull.user.login
        # Both commits must be readable, so that a 404 on a file below means "absent there",
        # never "cannot see that commit" (which would read as "no model becomes adopted").
        for label, sha in (("base", base_sha), ("head", head_sha)):
            require_commit(gh, repo_name, sha, label)
        base = registry_at(repo, registry_path, base_sha, f"base {short_sha(base_sha)}")
        head = registry_at(repo, registry_path, head_sha, f"head {short_sha(head_sha)}")
        adopted = becoming_adopted(base, head)
        if not adopted:
            return Decision(True, "no model becomes adopted"), head_sha
        what = _names(adopted)
        try:
            owners = owners_at_base(repo, base_sha, registry_path)
        except Blocked as exc:
            raise Blocked(f"{what}; {exc}") from None
        try:
            reviews = list(pull.get_reviews())
        except GithubException as exc:
            raise Blocked(f"{what}; {describe_api_error(exc, 'listing reviews')}") from None
        approver, notes = judge_reviews(gh, reviews, owners, author, head_sha)
        details = [f"owners of {registry_path}: {owners.shown} ({owners.source} at base)", *notes]
        if approver is not None:
            return Decision(
                True,
                f"allowed: {what}; approved by code owner {approver} at {short_sha(head_sha)}",
                details,
            ), head_sha
        why = "; ".join(notes) if notes else f"no approval by a code owner ({owners.shown})"
        return Decision(False, f"blocked: {what}; {why}", details), head_sha
    except Blocked as exc:
        return Decision(False, f"blocked: {exc}"), head_sha
    except GithubException as exc:
        return Decision(False, f"blocked: {describe_api_error(exc, 'reading the PR')}"), head_sha
    except RequestException as exc:
        return Decision(False, f"blocked: cannot reach the GitHub API ({type(exc).__name__})"), (
            head_sha
        )


def publish(gh: Github, repo_name: str, head_sha: str, decision: Decision) -> None:
    """``POST /repos/{o}/{r}/statuses/{sha}`` (directly: no commit lookup that could fail)."""
    body: dict[str, str] = {
        "state": decision.state,
        "description": decision.description,
        "context": CONTEXT,
    }
    url = run_url()
    if url:
        body["target_url"] = url
    gh.requester.requestJsonAndCheck("POST", f"/repos/{repo_name}/statuses/{head_sha}",
                                     input=body)


def summary_markdown(decision: Decision, head_sha: str) -> str:
    verdict = "allowed" if decision.allowed else "blocked"
    lines = [f"### {CONTEXT}: {verdict}", "", decision.reason, ""]
    lines += [f"- {d}" for d in decision.details]
    lines += ["", f"Commit status `{CONTEXT}` = `{decision.state}` on `{head_sha}`."]
    return "\n".join(lines) + "\n"


def registry_repo_path(config: str) -> str:
    """The registry's path in the repository (gate.yaml's directory joined with suite.registry).

    gate.yaml is read from the working directory, i.e. the base checkout, never the PR."""
    suite = load_suite(config)
    joined = posixpath.normpath(posixpath.join(Path(config).parent.as_posix(), suite.registry))
    if joined.startswith("../") or joined.startswith("/"):
        raise ConfigError.one(config, None, f"suite.registry {suite.registry!r} is outside the "
                              "repository; the adoption guard reads it through the GitHub API")
    return joined


def run_guard(config: str, pr: int | None) -> int:
    registry_path = registry_repo_path(config)
    try:
        repo_name = repository()
        payload = event_payload()
        ref = pull_from_payload(payload) if payload else None
        if pr is not None and (ref is None or ref.number != pr):
            ref = PullRef(number=pr)
        if ref is None:
            raise GitHubContextError("no pull request: not a pull_request event and no --pr")
        gh = client()
    except GitHubContextError as exc:
        print(f"gate guard: blocked: {exc}")
        return 1
    try:
        decision, head_sha = decide(gh, repo_name, ref, registry_path)
        print(f"gate guard: {decision.reason}")
        for line in decision.details:
            print(f"  {line}")
        step_summary(summary_markdown(decision, head_sha))
        if not head_sha:
            print("gate guard: no head sha known; cannot publish a commit status")
            return 1
        try:
            publish(gh, repo_name, head_sha, decision)
        except GithubException as exc:
            print(f"gate guard: {describe_api_error(exc, 'publishing the commit status')}")
            return 1
        except RequestException as exc:
            print(f"gate guard: cannot reach the GitHub API: {type(exc).__name__}")
            return 1
        print(f"gate guard: status {CONTEXT}={decision.state} on {short_sha(head_sha)}: "
              f"{decision.description}")
        return 0 if decision.allowed else 1
    finally:
        gh.close()
