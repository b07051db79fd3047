"""``gate guard``: no model becomes ``adopted`` without a code owner's approval of the head commit.

Branch protection's "require review from Code Owners" is per file; this is the field-level
check for ``evaluation_status: adopted``. It runs under ``pull_request_target``,
``merge_group`` and ``workflow_run`` (after a review) and never checks out or runs the PR's
code: every file at the PR's commits is read through the API (``contents/{path}?ref=sha``).

0. Scope: only an open PR into the default branch or a ``--protected-branch``; nothing is
   published for another. Every open PR into a protected branch with the same head commit is
   judged, and the status (keyed by commit) is ``success`` only when each passes.
   ``pending`` is published first.
1. The base is the base branch's current tip, and the head must contain it (else blocked: the
   PR is behind): merging then gives the head's tree, which is what is judged. A merge-group
   commit is judged against the group's base (``_group_decision``).
2. gate.yaml at base *and* head: the registry path each names (no ``..``). A changed
   ``suite.registry``, or a registry or gate.yaml missing at head, needs a code owner.
3. The registry at base and head (``adoption_changes``): adoptions, changes of adopted entries
   other than ``notes``/``last_run``, de-adoptions and removals; and providers redefined under
   adopted entries (``provider_changes``). ``.gitattributes`` that change how gate.yaml, the
   registry or CODEOWNERS check out (``gate.github.attributes``). A symbolic link in any path
   read fails closed. None of these: success, "no model becomes adopted".
4. CODEOWNERS at the *base* (``.github/CODEOWNERS``, ``CODEOWNERS``, ``docs/CODEOWNERS``,
   first found), read as GitHub reads it (``gate.github.owners``); owners count only with
   write access.
5. Each reviewer's latest opinionated review (APPROVED, CHANGES_REQUESTED, DISMISSED;
   COMMENTED does not override). An outstanding CHANGES_REQUESTED by any code owner (or by a
   reviewer whose ownership cannot be read) blocks. Otherwise allowed when one is APPROVED, by
   someone other than the PR author, who is an owner, for the head sha.
6. Right before publishing, the PRs sharing the head, their heads and their reviews are read
   again: if anything changed, nothing is published (the run the change started publishes).
   Any API failure or unreadable file: blocked, saying why; any other exception: ``failure``
   with its cause.

Text from the PR's files (model ids, paths, parse errors) is neutralised before it reaches the
status description, the console or the job summary (gate.report.neutralize).

The decision is published as a commit status on the head sha, context ``gate/adoption-guard``,
with a description of at most 140 characters saying exactly why; printed; and written to the
job summary. Exit 0 allowed (or not judged), 1 blocked or not published.
"""

from __future__ import annotations

import base64
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from github import Github, GithubException
from requests import RequestException

from gate.config.schema import Registry
from gate.config.yamlio import model_from_doc, parse_yaml
from gate.errors import Blocked, ConfigError, GitHubContextError
from gate.github.attributes import applying, attribute_files
from gate.github.changes import (
    adoption_changes,
    provider_changes,
    providers_of,
    registry_path_of,
)
from gate.github.context import (
    client,
    describe_api_error,
    event_payload,
    pull_from_payload,
    repository,
    run_url,
    step_summary,
)
from gate.github.owners import Access, Owners, is_owner, owners_of
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


def _symlinked_component(repo: Any, path: str, sha: str) -> str | None:
    """The first ancestor directory of ``path`` that is a symbolic link at ``sha``, if any.

    The contents API answers 404 through a symlinked directory, which would read as "absent"."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        parent, name = "/".join(parts[: i - 1]), "/".join(parts[:i])
        try:
            listing = repo.get_contents(parent, ref=sha)
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise Blocked(describe_api_error(exc, f"listing {untrusted(parent or '/')}")) from None
        entries = listing if isinstance(listing, list) else [listing]
        kinds = {getattr(e, "path", None): getattr(e, "type", None) for e in entries}
        if kinds.get(name) == "symlink":
            return name
        if kinds.get(name) != "dir":
            return None
    return None


def read_at(repo: Any, path: str, sha: str) -> str | None:
    """A file's text at a sha through the contents API; None when absent. Blocked when any
    component of the path is a symbolic link (git checks it out as a link, gate would follow
    it) and on any other error."""
    shown = untrusted(path)  # a head path comes from the PR's gate.yaml
    try:
        item = repo.get_contents(path, ref=sha)
    except GithubException as exc:
        if exc.status != 404:
            raise Blocked(describe_api_error(exc, f"reading {shown} at {short_sha(sha)}")) from None
        link = _symlinked_component(repo, path, sha)
        if link is not None:
            raise Blocked(f"{shown} at {short_sha(sha)} goes through the symbolic link "
                          f"{untrusted(link)}") from None
        return None
    if isinstance(item, list) or getattr(item, "type", "file") == "dir":
        raise Blocked(f"{shown} at {short_sha(sha)} is a directory, not a file")
    if getattr(item, "type", "file") != "file" or getattr(item, "path", path) != path:
        raise Blocked(f"{shown} at {short_sha(sha)} is a symbolic link")
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


@dataclass(frozen=True)
class ConfigAt:
    """gate.yaml at a sha as the guard needs it: the registry path and the providers."""

    registry: str
    providers: dict[str, Any]


def config_at(repo: Any, config_path: str, sha: str, label: str) -> ConfigAt | None:
    """gate.yaml at a sha (read leniently); None when absent there."""
    text = read_at(repo, config_path, sha)
    if text is None:
        return None
    try:
        doc = parse_yaml(text, f"{config_path}@{label}")
        return ConfigAt(registry_path_of(doc, config_path), providers_of(doc))
    except ConfigError as exc:
        raise Blocked(f"{config_path} at {label} is invalid ({_first(exc)})") from None


def registry_path_at(repo: Any, config_path: str, sha: str, label: str) -> str | None:
    """The registry path gate.yaml names at a sha; None when gate.yaml is absent there."""
    found = config_at(repo, config_path, sha, label)
    return found.registry if found else None


@dataclass(frozen=True)
class Protected:
    """What a PR changes that needs a code owner's approval, and where the registry is."""

    changes: list[tuple[str, str]]  # (model id, what happens)
    moves: list[str]  # the registry moved or went missing; attributes; providers
    base_path: str

    @property
    def what(self) -> str:
        return describe_changes(self.changes, self.moves)


def _attribute_moves(repo: Any, paths: list[str], base_sha: str, head_sha: str) -> list[str]:
    """Byte-changing .gitattributes applying to ``paths`` differently at base and head."""
    files = attribute_files(paths)
    texts = {}
    for sha in (base_sha, head_sha):
        texts[sha] = {f: t for f in files if (t := read_at(repo, f, sha)) is not None}
    moves: list[str] = []
    for path in paths:
        before, after = applying(texts[base_sha], path), applying(texts[head_sha], path)
        changed = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
        if changed:
            moves.append(f".gitattributes changes {', '.join(changed)} of {untrusted(path)}")
    return moves


def protected_changes(repo: Any, config_path: str, base_sha: str, head_sha: str) -> Protected:
    base_label, head_label = f"base {short_sha(base_sha)}", f"head {short_sha(head_sha)}"
    default = registry_path_of(parse_yaml("{}", config_path), config_path)
    base_cfg = config_at(repo, config_path, base_sha, base_label)
    head_cfg = config_at(repo, config_path, head_sha, head_label)
    base_path = base_cfg.registry if base_cfg else default
    moves: list[str] = []
    if head_cfg is None:
        moves.append(f"{config_path} is missing at head")
        head_path = base_path
    else:
        head_path = head_cfg.registry
        if head_path != base_path:
            moves.append(f"suite.registry moves from {base_path} to {untrusted(head_path)}")
    base = registry_at(repo, base_path, base_sha, base_label) or Registry(models=[])
    head = registry_at(repo, head_path, head_sha, head_label)
    if head is None:
        if base.models:
            moves.append(f"{untrusted(head_path)} is missing at head (renamed or deleted)")
        head = Registry(models=[])
    changes = adoption_changes(base, head)
    if head_cfg is not None:  # a missing gate.yaml is a move of its own (above)
        changes += provider_changes(base_cfg.providers if base_cfg else {},
                                    head_cfg.providers, base, head)
    watched = list(dict.fromkeys([config_path, base_path, head_path, *CODEOWNERS_PATHS]))
    moves += _attribute_moves(repo, watched, base_sha, head_sha)
    return Protected(changes, moves, base_path)


# --- owners and reviews -------------------------------------------------------------------


def owners_at_base(repo: Any, base_sha: str, registry_path: str) -> Owners:
    for candidate in CODEOWNERS_PATHS:
        text = read_at(repo, candidate, base_sha)
        if text is not None:
            break
    else:
        raise Blocked(
            f"no CODEOWNERS at base {short_sha(base_sha)} (.github/, root, docs/): fail closed"
        )
    return owners_of(text, registry_path, candidate, "base", registry_path)


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


@dataclass
class Verdict:
    approver: str | None = None
    blockers: list[str] = field(default_factory=list)  # outstanding changes requested
    notes: list[str] = field(default_factory=list)  # why other reviews do not count
    unreadable: bool = False  # a permission or membership could not be read


def _changes_requested(access: Access, owners: Owners, name: str, verdict: Verdict) -> None:
    owner, why = is_owner(access, owners, name)
    if owner is False:
        verdict.notes.append(f"{name} requested changes (not a code owner)")
    elif owner is None:
        verdict.unreadable = True
        verdict.blockers.append(f"{name} requested changes and may be a code owner ({why})")
    else:
        verdict.blockers.append(f"code owner {name} requested changes")


def _approved(access: Access, owners: Owners, review: Any, author: str, head_sha: str,
              verdict: Verdict) -> None:
    name = review.user.login
    if name.lower() == author.lower():
        verdict.notes.append(f"approval by {name} does not count: {name} is the PR author")
        return
    if review.commit_id != head_sha:
        verdict.notes.append(f"approval by {name} is for an older commit "
                             f"({short_sha(review.commit_id)}, head is {short_sha(head_sha)})")
        return
    owner, why = is_owner(access, owners, name)
    if owner:
        verdict.approver = verdict.approver or name
        return
    verdict.unreadable = verdict.unreadable or owner is None
    verdict.notes.append(f"approval by {name} is not from a code owner ({why})")


def judge_reviews(
    access: Access, reviews: list[Any], owners: Owners, author: str, head_sha: str
) -> Verdict:
    """Every reviewer's latest opinion, judged: an owner's change request blocks in any case."""
    verdict = Verdict()
    for review in latest_opinions(reviews).values():
        if review.state == "DISMISSED":
            verdict.notes.append(f"review by {review.user.login} was dismissed")
        elif review.state == "CHANGES_REQUESTED":
            _changes_requested(access, owners, review.user.login, verdict)
        else:
            _approved(access, owners, review, author, head_sha, verdict)
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


def branch_tip(gh: Github, repo_name: str, branch: str) -> str:
    try:
        _h, data = gh.requester.requestJsonAndCheck(
            "GET", f"/repos/{repo_name}/branches/{quote(branch, safe='')}")
    except GithubException as exc:
        raise Blocked(describe_api_error(exc, f"reading the tip of {untrusted(branch)}")) from None
    sha = data.get("commit", {}).get("sha") if isinstance(data, dict) else None
    if not isinstance(sha, str) or not sha:
        raise Blocked(f"no tip for the base branch {untrusted(branch)}")
    return sha


def require_up_to_date(gh: Github, repo_name: str, branch: str, tip: str, head_sha: str) -> None:
    """The head must contain the base branch's current tip: then merging the PR gives exactly
    the head's tree, which is what is judged (a stale base could merge into something else)."""
    try:
        _h, data = gh.requester.requestJsonAndCheck(
            "GET", f"/repos/{repo_name}/compare/{tip}...{head_sha}")
    except GithubException as exc:
        raise Blocked(describe_api_error(exc, "comparing the head with its base")) from None
    status = data.get("status") if isinstance(data, dict) else None
    if status not in ("ahead", "identical"):
        raise Blocked(f"the PR is behind {untrusted(branch)} ({short_sha(tip)}): update the "
                      "branch; the guard judges the merge with the current base")


def _decide(gh: Github, repo_name: str, pull: Any, config_path: str,
            access: Access) -> Decision:
    repo = gh.get_repo(repo_name)
    head_sha, author = pull.head.sha, pull.user.login
    base_sha = branch_tip(gh, repo_name, pull.base.ref)
    # Both commits must be readable, so that a 404 on a file below means "absent there",
    # never "cannot see that commit" (which would read as "no model becomes adopted").
    for label, sha in (("base", base_sha), ("head", head_sha)):
        require_commit(gh, repo_name, sha, label)
    require_up_to_date(gh, repo_name, pull.base.ref, base_sha, head_sha)
    found = protected_changes(repo, config_path, base_sha, head_sha)
    if not found.changes and not found.moves:
        return Decision(True, "no model becomes adopted")
    what = found.what
    try:
        owners = owners_at_base(repo, base_sha, found.base_path)
    except Blocked as exc:
        raise Blocked(f"{what}; {exc}") from None
    try:
        reviews = list(pull.get_reviews())
    except GithubException as exc:
        raise Blocked(f"{what}; {describe_api_error(exc, 'listing reviews')}") from None
    verdict = judge_reviews(access, reviews, owners, author, head_sha)
    details = [f"owners of {found.base_path}: {owners.shown} ({owners.source} at base)",
               *verdict.blockers, *verdict.notes]
    return _judged(what, verdict, owners, head_sha, details)


def decide(gh: Github, repo_name: str, pull: Any, config_path: str,
           access: Access) -> Decision:
    """The decision for one PR. Every failure is a blocked decision."""
    try:
        return _decide(gh, repo_name, pull, config_path, access)
    except Blocked as exc:
        return Decision(False, f"blocked: {exc}")
    except GithubException as exc:
        return Decision(False, f"blocked: {describe_api_error(exc, 'reading the PR')}")
    except RequestException as exc:
        return Decision(False, f"blocked: cannot reach the GitHub API ({type(exc).__name__})")


def out_of_scope(pull: Any, protected: list[str]) -> str | None:
    """Why the guard does not judge this PR (None: it does)."""
    if pull.state != "open":
        return f"PR #{pull.number} is {untrusted(str(pull.state))}, not open"
    if pull.base.ref not in protected:
        return (f"PR #{pull.number} is into {untrusted(pull.base.ref)}, not a protected branch "
                f"({', '.join(untrusted(b) for b in protected)})")
    return None


def peers_of(repo: Any, pull: Any, protected: list[str]) -> list[Any]:
    """Every open PR into a protected branch with the same head commit (the commit status is
    keyed by sha, so its verdict must hold for each of them), this one first."""
    others = [p for p in repo.get_pulls(state="open")
              if p.head.sha == pull.head.sha and p.number != pull.number
              and out_of_scope(p, protected) is None]
    return [pull, *sorted(others, key=lambda p: p.number)]


def combine(decisions: list[tuple[int, Decision]]) -> Decision:
    if len(decisions) == 1:
        return decisions[0][1]
    blocked = [(n, d) for n, d in decisions if not d.allowed]
    details = [f"PR #{n}: {d.reason}" for n, d in decisions]
    if blocked:
        number, first = blocked[0]
        return Decision(False, f"PR #{number} {first.reason}", details + first.details)
    return Decision(True, "; ".join(f"PR #{n} {d.reason}" for n, d in decisions), details)


def snapshot(repo: Any, numbers: list[int]) -> list[tuple[Any, ...]]:
    """What a decision depends on that can change while it is made: head shas and reviews."""
    out: list[tuple[Any, ...]] = []
    for number in numbers:
        pull = repo.get_pull(number)
        reviews = sorted((r.id, r.state, r.commit_id) for r in pull.get_reviews())
        out.append((number, pull.state, pull.base.ref, pull.head.sha, tuple(reviews)))
    return out


def publish(gh: Github, repo_name: str, head_sha: str, state: str, description: str) -> None:
    """``POST /repos/{o}/{r}/statuses/{sha}`` (directly: no commit lookup that could fail)."""
    body: dict[str, str] = {
        "state": state,
        "description": shorten(description, DESCRIPTION_LIMIT),
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
    raw = Path(config).as_posix()
    path = posixpath.normpath(raw)
    if ".." in raw.split("/") or path.startswith("/"):
        raise ConfigError.one(config, None, "--config must be a path inside the repository "
                              "without `..`; the adoption guard reads it at the PR's shas "
                              "through the API")
    return path


def state_of(repo: Any, number: int, protected: list[str]) -> tuple[list[Any], tuple[Any, ...]]:
    """(the PRs to judge, what their decision depends on that can change while it is made:
    which PRs share the head, their head shas, bases and reviews)."""
    pull = repo.get_pull(number)
    if out_of_scope(pull, protected) is not None:
        return [pull], ("out of scope", pull.state, pull.base.ref)
    peers = peers_of(repo, pull, protected)
    return peers, tuple((p.number, p.head.sha, p.base.ref, _reviews_key(p)) for p in peers)


def _reviews_key(pull: Any) -> tuple[Any, ...]:
    try:
        return tuple(sorted((r.id, r.state, r.commit_id) for r in pull.get_reviews()))
    except GithubException as exc:  # the decision says so (listing reviews fails there too)
        return ("unreadable", exc.status)


def _guard(gh: Github, repo_name: str, number: int, config_path: str, branches: list[str],
           known: list[str]) -> int:
    repo = gh.get_repo(repo_name)
    protected = list(dict.fromkeys([repo.default_branch, *branches]))
    pull = repo.get_pull(number)
    why_not = out_of_scope(pull, protected)
    if why_not is not None:
        print(f"gate guard: not judged, nothing published: {why_not}")
        step_summary(f"### {CONTEXT}: not judged\n\n{neutralize(why_not, limit=2000)}\n")
        return 0
    head_sha = pull.head.sha
    known.append(head_sha)
    publish(gh, repo_name, head_sha, "pending",
            f"judging PR #{number} at {short_sha(head_sha)}")
    peers, before = state_of(repo, number, protected)
    access = Access(gh, repo_name)
    decision = combine([(p.number, decide(gh, repo_name, p, config_path, access))
                        for p in peers])
    print(f"gate guard: {decision.reason}")
    for line in decision.details:
        print(f"  {line}")
    _peers, after = state_of(repo, number, protected)
    if after != before:
        print("gate guard: the PR changed while it was judged (its head, its reviews, or the "
              "PRs sharing its head): nothing published; the run that the change started "
              "publishes")
        step_summary(f"### {CONTEXT}: not published\n\nThe PR changed while it was judged.\n")
        return 1
    step_summary(summary_markdown(decision, head_sha))
    publish(gh, repo_name, head_sha, decision.state, decision.reason)
    print(f"gate guard: status {CONTEXT}={decision.state} on {short_sha(head_sha)}: "
          f"{decision.description}")
    return 0 if decision.allowed else 1


def _crashed(gh: Github, repo_name: str, known: list[str], exc: BaseException) -> int:
    """Any failure while judging: publish ``failure`` with the cause (an earlier ``success``
    must not stay standing), or say why nothing could be published."""
    if isinstance(exc, GithubException):
        cause = describe_api_error(exc, "judging the PR")
    else:
        cause = f"{type(exc).__name__}: {untrusted(str(exc), 80)}"
    reason = f"blocked: the guard failed ({cause})"
    print(f"gate guard: {reason}")
    step_summary(f"### {CONTEXT}: blocked\n\n{neutralize(reason, limit=2000)}\n")
    if not known:
        print("gate guard: no head sha known; cannot publish a commit status")
        return 1
    try:
        publish(gh, repo_name, known[-1], "failure", reason)
    except (GithubException, RequestException) as again:
        print(f"gate guard: cannot publish the failure either ({type(again).__name__})")
    return 1


_QUEUE_REF = re.compile(r"refs/heads/gh-readonly-queue/.+/pr-([1-9][0-9]{0,9})-[0-9a-f]{40}")


def _group_decision(gh: Github, repo_name: str, group: dict[str, Any], config_path: str,
                    protected: list[str]) -> Decision:
    """A merge-group commit is what merges: judge its changes against the group's base. With
    protected changes, they must be exactly those of the queued PR the group is for (the last
    ``pr-N`` of its ref), judged as for that PR: anything more came from other PRs ahead of it
    in the queue, combined in a way no owner reviewed (queue adoption PRs alone)."""
    repo = gh.get_repo(repo_name)
    base_sha, head_sha = str(group.get("base_sha")), str(group.get("head_sha"))
    found = protected_changes(repo, config_path, base_sha, head_sha)
    if not found.changes and not found.moves:
        return Decision(True, "no model becomes adopted")
    ref = _QUEUE_REF.fullmatch(str(group.get("head_ref", "")))
    if ref is None:
        return Decision(False, f"blocked: {found.what}; not a merge-queue ref")
    pull = repo.get_pull(int(ref[1]))
    if out_of_scope(pull, protected) is not None:
        return Decision(False, f"blocked: {found.what}; {out_of_scope(pull, protected)}")
    alone = protected_changes(repo, config_path, base_sha, pull.head.sha)
    if (alone.changes, alone.moves) != (found.changes, found.moves):
        return Decision(False, f"blocked: the merge group changes more than PR #{pull.number} "
                        f"({found.what}): queue adoption PRs alone")
    decision = decide(gh, repo_name, pull, config_path, Access(gh, repo_name))
    return Decision(decision.allowed, f"PR #{pull.number} {decision.reason}", decision.details)


def _guard_group(gh: Github, repo_name: str, group: dict[str, Any], config_path: str,
                 branches: list[str], known: list[str]) -> int:
    repo = gh.get_repo(repo_name)
    protected = list(dict.fromkeys([repo.default_branch, *branches]))
    head_sha = str(group.get("head_sha", ""))
    if not re.fullmatch(r"[0-9a-f]{40}", head_sha):
        raise GitHubContextError("merge_group event without a head sha")
    known.append(head_sha)
    publish(gh, repo_name, head_sha, "pending", f"judging the merge group {short_sha(head_sha)}")
    decision = _group_decision(gh, repo_name, group, config_path, protected)
    print(f"gate guard: {decision.reason}")
    step_summary(summary_markdown(decision, head_sha))
    publish(gh, repo_name, head_sha, decision.state, decision.reason)
    print(f"gate guard: status {CONTEXT}={decision.state} on {short_sha(head_sha)}")
    return 0 if decision.allowed else 1


def run_guard(config: str, pr: int | None, branches: list[str] | None = None) -> int:
    config_path = config_repo_path(config)
    try:
        repo_name = repository()
        payload = event_payload() or {}
        ref = pull_from_payload(payload)
        group = payload.get("merge_group") if pr is None else None
        number = pr if pr is not None else (ref.number if ref else None)
        if number is None and not isinstance(group, dict):
            raise GitHubContextError("no pull request: not a pull_request or merge_group event, "
                                     "and no --pr")
        gh = client()
    except GitHubContextError as exc:
        print(f"gate guard: blocked: {exc}")
        return 1
    known: list[str] = []  # the head sha, once read
    try:
        if isinstance(group, dict):
            return _guard_group(gh, repo_name, group, config_path, branches or [], known)
        assert number is not None
        return _guard(gh, repo_name, number, config_path, branches or [], known)
    except Exception as exc:  # any crash publishes `failure` with its cause
        return _crashed(gh, repo_name, known, exc)
    finally:
        gh.close()
