"""``gate guard``: no model becomes ``adopted`` without a code owner's approval of the head commit.

Branch protection's "require review from Code Owners" is per file; this is the field-level
check for ``evaluation_status: adopted``. It runs under ``pull_request_target`` (and
``pull_request_review``) and never checks out or runs the PR's code: every file at the PR's
refs is read through the API (``GET /repos/{o}/{r}/contents/{path}?ref=sha``).

1. gate.yaml at base *and* head (through the API, as data): the registry path each names. A
   changed ``suite.registry``, or a registry missing at head (renamed, deleted), needs a code
   owner's approval like an adoption: otherwise a PR could point the gate at a new file.
2. The registry at base (base path) and at head (head path): entries adopted at head that were
   not at base (new entries included), and adopted entries whose fields other than ``notes``
   and ``last_run`` changed (a provider swap is a new adoption). None of 1 or 2: success,
   "no model becomes adopted".
3. CODEOWNERS at the *base* sha (``.github/CODEOWNERS``, ``CODEOWNERS``, ``docs/CODEOWNERS``,
   first found; a PR can edit its own copy, so the head's never counts); the owners of the
   base registry path, last matching rule wins. No CODEOWNERS, no rule, or no owner: fail
   closed.
4. Each reviewer's latest opinionated review (APPROVED, CHANGES_REQUESTED, DISMISSED;
   COMMENTED does not override). An outstanding CHANGES_REQUESTED by any code owner (or by a
   reviewer whose ownership cannot be read) blocks, whatever other owners approved. Otherwise
   allowed when one is APPROVED, by someone other than the PR author, who is an owner (a user
   by login, case-insensitively; a team ``@org/team`` through an active team membership, which
   needs a token with org members:read: a GitHub App token), for the head sha.
5. Any API failure (404, 403, ...) or unreadable file: fail closed, saying why.

Text from the PR's files (model ids, paths, parse errors) is neutralised before it reaches the
status description, the console or the job summary (gate.report.neutralize).

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
from gate.github.changes import adoption_changes, registry_path_of
from gate.github.context import (
    PullRef,
    client,
    describe_api_error,
    event_payload,
    pull_from_payload,
    repository,
    run_url,
    step_summary,
)
from gate.report.neutralize import neutralize

CONTEXT = "gate/adoption-guard"
DESCRIPTION_LIMIT = 140
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
OPINIONATED = ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")
MEMBERS_PERMISSION = (
    "the token cannot read team membership: it needs the org permission Members: read, "
    "which GITHUB_TOKEN never has; use a GitHub App token (actions/create-github-app-token)"
)


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


def untrusted(text: str, limit: int = 60) -> str:
    """A piece of a PR's files (model id, path, parse error) inside a guard message."""
    return neutralize(text, context="plain", limit=limit)


def _names(ids: list[str]) -> str:
    verb = "becomes" if len(ids) == 1 else "become"
    shown = ", ".join(untrusted(i) for i in ids[:3])
    shown += f" and {len(ids) - 3} more" if len(ids) > 3 else ""
    return f"{shown} {verb} adopted"


def describe_changes(changes: list[tuple[str, str]], moves: list[str]) -> str:
    """``vendor/x becomes adopted; adopted vendor/y changes provider; registry moves ...``."""
    parts: list[str] = []
    new = [ident for ident, what in changes if what == "becomes adopted"]
    if new:
        parts.append(_names(new))
    for ident, what in changes:
        if what != "becomes adopted":
            parts.append(f"{untrusted(ident)} {what}")
    return "; ".join(parts + moves)


# --- reading files at a ref through the API -----------------------------------------------


def read_at(repo: Any, path: str, sha: str) -> str | None:
    """A file's text at a sha through the contents API; None on 404. Other errors: Blocked."""
    shown = untrusted(path)  # a head path comes from the PR's gate.yaml
    try:
        item = repo.get_contents(path, ref=sha)
    except GithubException as exc:
        if exc.status == 404:
            return None
        raise Blocked(describe_api_error(exc, f"reading {shown} at {short_sha(sha)}")) from None
    if isinstance(item, list) or getattr(item, "type", "file") != "file":
        raise Blocked(f"{shown} at {short_sha(sha)} is a directory, not a file")
    raw = item.content
    if item.encoding != "base64" or raw is None:
        raise Blocked(f"{shown} at {short_sha(sha)}: unexpected encoding {item.encoding!r}")
    try:
        return base64.b64decode(raw).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise Blocked(f"{shown} at {short_sha(sha)} is not UTF-8 text") from None


def require_commit(gh: Github, repo_name: str, sha: str, label: str) -> None:
    try:
        gh.requester.requestJsonAndCheck("GET", f"/repos/{repo_name}/commits/{sha}")
    except GithubException as exc:
        why = describe_api_error(exc, f"reading the {label} commit {short_sha(sha)}")
        raise Blocked(why) from None


def _first(exc: ConfigError) -> str:
    """The first problem of a PR's file, as ``line N: message`` (neutralised: it may quote it)."""
    if not exc.problems:
        return "unreadable"
    problem = exc.problems[0]
    where = f"line {problem.line}: " if problem.line is not None else ""
    return untrusted(where + problem.message, 80)


def registry_at(repo: Any, path: str, sha: str, label: str) -> Registry | None:
    """The registry at a sha; None when absent there."""
    text = read_at(repo, path, sha)
    if text is None:
        return None
    try:
        return model_from_doc(Registry, parse_yaml(text, f"{path}@{label}"))
    except ConfigError as exc:
        raise Blocked(f"{untrusted(path)} at {label} is invalid ({_first(exc)})") from None


def registry_path_at(repo: Any, config_path: str, sha: str, label: str) -> str | None:
    """The registry path gate.yaml names at a sha; None when gate.yaml is absent there."""
    text = read_at(repo, config_path, sha)
    if text is None:
        return None
    try:
        return registry_path_of(parse_yaml(text, f"{config_path}@{label}"), config_path)
    except ConfigError as exc:
        raise Blocked(f"{config_path} at {label} is invalid ({_first(exc)})") from None


@dataclass(frozen=True)
class Protected:
    """What a PR changes that needs a code owner's approval, and where the registry is."""

    changes: list[tuple[str, str]]  # (model id, what happens)
    moves: list[str]  # the registry moved or went missing
    base_path: str

    @property
    def what(self) -> str:
        return describe_changes(self.changes, self.moves)


def protected_changes(repo: Any, config_path: str, base_sha: str, head_sha: str) -> Protected:
    base_label, head_label = f"base {short_sha(base_sha)}", f"head {short_sha(head_sha)}"
    default = registry_path_of(parse_yaml("{}", config_path), config_path)
    base_path = registry_path_at(repo, config_path, base_sha, base_label) or default
    head_path = registry_path_at(repo, config_path, head_sha, head_label)
    moves: list[str] = []
    if head_path is None:
        moves.append(f"{config_path} is missing at head")
        head_path = base_path
    elif head_path != base_path:
        moves.append(f"suite.registry moves from {base_path} to {untrusted(head_path)}")
    base = registry_at(repo, base_path, base_sha, base_label) or Registry(models=[])
    head = registry_at(repo, head_path, head_sha, head_label)
    if head is None:
        if base.models:
            moves.append(f"{untrusted(head_path)} is missing at head (renamed or deleted)")
        head = Registry(models=[])
    return Protected(adoption_changes(base, head), moves, base_path)


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


def team_member(gh: Github, org: str, slug: str, login: str) -> tuple[bool | None, str]:
    """(True: an active member, False: not, None: cannot tell; why not)."""
    try:
        _headers, data = gh.requester.requestJsonAndCheck(
            "GET", f"/orgs/{org}/teams/{slug}/memberships/{login}"
        )
    except GithubException as exc:
        if exc.status == 404:
            return False, f"not a member of @{org}/{slug}"
        if exc.status in (401, 403):
            return None, f"cannot read @{org}/{slug} membership (HTTP {exc.status})"
        return None, describe_api_error(exc, f"checking @{org}/{slug} membership")
    state = data.get("state") if isinstance(data, dict) else None
    if state == "active":
        return True, ""
    return False, f"membership of @{org}/{slug} is {state or 'unknown'}, not active"


def is_owner(gh: Github, owners: Owners, login: str) -> tuple[bool | None, str]:
    """(True, False, or None when a team's membership cannot be read; why not)."""
    if login.lower() in owners.users:
        return True, ""
    reasons: list[str] = []
    unknown = False
    for org, slug in owners.teams:
        member, why = team_member(gh, org, slug, login)
        if member:
            return True, ""
        unknown = unknown or member is None
        reasons.append(why)
    return (None if unknown else False), ("; ".join(reasons) or owners.shown)


@dataclass
class Verdict:
    approver: str | None = None
    blockers: list[str] = field(default_factory=list)  # outstanding changes requested
    notes: list[str] = field(default_factory=list)  # why other reviews do not count
    unreadable: bool = False  # a team membership could not be read (token permission)


def _changes_requested(gh: Github, owners: Owners, name: str, verdict: Verdict) -> None:
    owner, why = is_owner(gh, owners, name)
    if owner is False:
        verdict.notes.append(f"{name} requested changes (not a code owner)")
    elif owner is None:
        verdict.unreadable = True
        verdict.blockers.append(f"{name} requested changes and may be a code owner ({why})")
    else:
        verdict.blockers.append(f"code owner {name} requested changes")


def _approved(gh: Github, owners: Owners, review: Any, author: str, head_sha: str,
              verdict: Verdict) -> None:
    name = review.user.login
    if name.lower() == author.lower():
        verdict.notes.append(f"approval by {name} does not count: {name} is the PR author")
        return
    if review.commit_id != head_sha:
        verdict.notes.append(f"approval by {name} is for an older commit "
                             f"({short_sha(review.commit_id)}, head is {short_sha(head_sha)})")
        return
    owner, why = is_owner(gh, owners, name)
    if owner:
        verdict.approver = verdict.approver or name
        return
    verdict.unreadable = verdict.unreadable or owner is None
    verdict.notes.append(f"approval by {name} is not from a code owner ({why})")


def judge_reviews(
    gh: Github, reviews: list[Any], owners: Owners, author: str, head_sha: str
) -> Verdict:
    """Every reviewer's latest opinion, judged: an owner's change request blocks in any case."""
    verdict = Verdict()
    for review in latest_opinions(reviews).values():
        if review.state == "DISMISSED":
            verdict.notes.append(f"review by {review.user.login} was dismissed")
        elif review.state == "CHANGES_REQUESTED":
            _changes_requested(gh, owners, review.user.login, verdict)
        else:
            _approved(gh, owners, review, author, head_sha, verdict)
    return verdict


# --- the decision -------------------------------------------------------------------------


def _judged(what: str, verdict: Verdict, owners: Owners, head_sha: str,
            details: list[str]) -> Decision:
    if verdict.unreadable:
        details.append(MEMBERS_PERMISSION)
    if verdict.blockers:
        return Decision(False, f"blocked: {what}; {'; '.join(verdict.blockers)}", details)
    if verdict.approver is not None:
        return Decision(True, f"allowed: {what}; approved by code owner {verdict.approver} at "
                        f"{short_sha(head_sha)}", details)
    notes = list(verdict.notes)
    if verdict.unreadable:
        notes.insert(0, "token lacks org members:read to check team owners (use a GitHub App "
                     "token)")
    why = "; ".join(notes) if notes else f"no approval by a code owner ({owners.shown})"
    return Decision(False, f"blocked: {what}; {why}", details)


def _decide(gh: Github, repo_name: str, ref: PullRef, config_path: str) -> tuple[Decision, str]:
    repo = gh.get_repo(repo_name)
    pull = repo.get_pull(ref.number)
    head_sha = ref.head_sha or pull.head.sha
    base_sha = ref.base_sha or pull.base.sha
    author = ref.author or pull.user.login
    # Both commits must be readable, so that a 404 on a file below means "absent there",
    # never "cannot see that commit" (which would read as "no model becomes adopted").
    for label, sha in (("base", base_sha), ("head", head_sha)):
        require_commit(gh, repo_name, sha, label)
    found = protected_changes(repo, config_path, base_sha, head_sha)
    if not found.changes and not found.moves:
        return Decision(True, "no model becomes adopted"), head_sha
    what = found.what
    try:
        owners = owners_at_base(repo, base_sha, found.base_path)
    except Blocked as exc:
        raise Blocked(f"{what}; {exc}") from None
    try:
        reviews = list(pull.get_reviews())
    except GithubException as exc:
        raise Blocked(f"{what}; {describe_api_error(exc, 'listing reviews')}") from None
    verdict = judge_reviews(gh, reviews, owners, author, head_sha)
    details = [f"owners of {found.base_path}: {owners.shown} ({owners.source} at base)",
               *verdict.blockers, *verdict.notes]
    return _judged(what, verdict, owners, head_sha, details), head_sha


def decide(gh: Github, repo_name: str, ref: PullRef, config_path: str) -> tuple[Decision, str]:
    """(decision, head sha to publish on). Every failure is a blocked decision."""
    head_sha = ref.head_sha or ""
    try:
        return _decide(gh, repo_name, ref, config_path)
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
    lines = [f"### {CONTEXT}: {verdict}", "", neutralize(decision.reason, limit=2000), ""]
    lines += [f"- {neutralize(d, limit=2000)}" for d in decision.details]
    lines += ["", f"Commit status `{CONTEXT}` = `{decision.state}` on `{head_sha}`."]
    return "\n".join(lines) + "\n"


def config_repo_path(config: str) -> str:
    """gate.yaml's path in the repository (the guard reads it at base and head by the API)."""
    path = posixpath.normpath(Path(config).as_posix())
    if path == ".." or path.startswith("../") or path.startswith("/"):
        raise ConfigError.one(config, None, "--config must be a path inside the repository; "
                              "the adoption guard reads it at the PR's shas through the API")
    return path


def run_guard(config: str, pr: int | None) -> int:
    config_path = config_repo_path(config)
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
        decision, head_sha = decide(gh, repo_name, ref, config_path)
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
