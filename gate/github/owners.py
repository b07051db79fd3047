"""CODEOWNERS read as GitHub reads it, and owners counted as GitHub counts them.

GitHub's documented rules (docs/github.md, "How the guard reads CODEOWNERS") are applied in a
small pre-pass; the pattern matching itself stays with the ``codeowners`` package, which only
ever sees the lines the pre-pass keeps, rebuilt as ``pattern owner owner`` on their own line
numbers:

* lines are split on ``\\n`` only (a trailing ``\\r`` is dropped); U+2028, U+0085, a form feed
  and the like are ordinary characters inside a line, never line breaks;
* ``#`` starts a comment anywhere on a line;
* tokens are split on ASCII space and tab only (a non-breaking space is part of a token);
* a line whose pattern GitHub does not support (``!`` negation, a ``[ ]`` range, a ``\\``
  escape) is skipped, as GitHub skips it; so is a pattern holding a character the package
  would split on (any other whitespace, a control character): such a pattern can only match
  a path that holds that character;
* an owner is ``@login``, ``@org/team`` or an e-mail address, in ASCII; anything else (a
  Kelvin sign in a login, ``@dana\\u2028/models.yaml``) is an error GitHub reports on that line.

The guard fails closed when the line that decides the registry's owners has such an error.
An owner counts only with write access: a user by collaborator permission (``admin`` or
``write``; ``maintain`` reports as ``write``), a team by its permission on the repository
(``push``, ``maintain`` or ``admin``) and an active membership. An e-mail owner cannot be
mapped to a login through the API, so it never counts (name the user by ``@login``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from codeowners import CodeOwners
from github import Github, GithubException

from gate.errors import Blocked
from gate.github.context import describe_api_error

CODEOWNERS_MAX_BYTES = 3 * 1024 * 1024  # GitHub does not load a larger CODEOWNERS file
_LOGIN = r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}"
USER = re.compile(rf"@({_LOGIN})", re.ASCII)
TEAM = re.compile(rf"@({_LOGIN})/([A-Za-z0-9][A-Za-z0-9_.-]*)", re.ASCII)
EMAIL = re.compile(
    r"[A-Za-z0-9.!$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+",
    re.ASCII,
)
_UNSUPPORTED_PATTERN = re.compile(r"^!|[\[\]\\]")
WRITE = ("admin", "write")
TEAM_WRITE = ("push", "maintain", "admin")


def _splits(text: str) -> bool:
    """Whether ``text`` holds a character that str.split/splitlines would break on, or a
    control character (the package splits on those; GitHub does not)."""
    return any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or len(ch.splitlines()) != 1
               for ch in text)


@dataclass(frozen=True)
class Rule:
    line: int
    pattern: str
    owners: tuple[str, ...]
    errors: tuple[str, ...]  # owner tokens GitHub would report as invalid


@dataclass(frozen=True)
class Parsed:
    rules: dict[int, Rule]
    text: str  # what the codeowners package is given: kept rules on their own line numbers


def parse(text: str) -> Parsed:
    """GitHub's line rules over a CODEOWNERS text (see the module docstring)."""
    kept: list[str] = []
    rules: dict[int, Rule] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        line = line.split("#", 1)[0]
        tokens = [t for t in re.split(r"[ \t]+", line) if t]
        if not tokens or _UNSUPPORTED_PATTERN.search(tokens[0]) or _splits(tokens[0]):
            kept.append("")
            continue
        pattern, owners = tokens[0], tuple(tokens[1:])
        errors = tuple(o for o in owners if not (USER.fullmatch(o) or TEAM.fullmatch(o)
                                                 or EMAIL.fullmatch(o)))
        rules[number] = Rule(number, pattern, owners, errors)
        valid = [o for o in owners if o not in errors]
        kept.append(" ".join([pattern, *valid]))
    return Parsed(rules, "\n".join(kept) + "\n")


@dataclass(frozen=True)
class Owners:
    users: frozenset[str]  # ASCII-lower-cased logins
    teams: tuple[tuple[str, str], ...]  # (org, team_slug)
    emails: tuple[str, ...]
    shown: str  # as written in CODEOWNERS
    source: str  # which CODEOWNERS file, at which line


def _ascii_lower(text: str) -> str:
    return text.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                        "abcdefghijklmnopqrstuvwxyz"))


def owners_of(text: str, path: str, source: str, label: str, shown_path: str) -> Owners:
    """The owners of ``path`` by the last matching rule; Blocked when GitHub would report an
    error on that rule, when nothing matches, or when the rule names no owner."""
    if len(text.encode("utf-8")) > CODEOWNERS_MAX_BYTES:
        raise Blocked(f"{source} at {label} is over 3 MB, which GitHub does not load: "
                      "fail closed")
    parsed = parse(text)
    _owners, line, _pattern, _section = CodeOwners(parsed.text).matching_line(path)
    if line is None:
        raise Blocked(f"no CODEOWNERS rule at {label} matches {shown_path}: fail closed")
    rule = parsed.rules[line]
    if rule.errors:
        raise Blocked(f"{source}:{line} at {label} has an owner GitHub reports as invalid "
                      f"({len(rule.errors)} of {len(rule.owners)}): fail closed")
    users: set[str] = set()
    teams: list[tuple[str, str]] = []
    emails: list[str] = []
    for owner in rule.owners:
        team = TEAM.fullmatch(owner)
        if team:
            teams.append((team[1], team[2]))
        elif USER.fullmatch(owner):
            users.add(_ascii_lower(owner[1:]))
        else:
            emails.append(owner)
    if not rule.owners:
        raise Blocked(f"{source}:{line} at {label} gives {shown_path} no user or team owner: "
                      "fail closed")
    return Owners(frozenset(users), tuple(teams), tuple(emails), " ".join(rule.owners),
                  f"{source}:{line}")


# --- who counts: write access --------------------------------------------------------------


@dataclass
class Access:
    """Answers about permissions and memberships, each asked once per guard run."""

    gh: Github
    repo_name: str
    cache: dict[tuple[str, ...], tuple[bool | None, str]] = field(default_factory=dict)

    def _get(self, url: str) -> dict[str, Any]:
        _headers, data = self.gh.requester.requestJsonAndCheck("GET", url)
        return data if isinstance(data, dict) else {}

    def user_can_write(self, login: str) -> tuple[bool | None, str]:
        key = ("user", _ascii_lower(login))
        if key not in self.cache:
            self.cache[key] = self._user(login)
        return self.cache[key]

    def _user(self, login: str) -> tuple[bool | None, str]:
        try:
            data = self._get(f"/repos/{self.repo_name}/collaborators/{login}/permission")
        except GithubException as exc:
            if exc.status == 404:
                return False, f"{login} has no access to the repository"
            return None, describe_api_error(exc, f"reading {login}'s permission")
        level = data.get("permission")
        if level in WRITE:
            return True, ""
        return False, f"{login} has only {level or 'no'} permission"

    def team_can_write(self, org: str, slug: str) -> tuple[bool | None, str]:
        key = ("team", org, slug)
        if key not in self.cache:
            self.cache[key] = self._team(org, slug)
        return self.cache[key]

    def _team(self, org: str, slug: str) -> tuple[bool | None, str]:
        try:
            data = self._get(f"/orgs/{org}/teams/{slug}/repos/{self.repo_name}")
        except GithubException as exc:
            if exc.status == 404:
                return False, f"@{org}/{slug} has no access to the repository"
            if exc.status in (401, 403):
                return None, f"cannot read @{org}/{slug}'s permission (HTTP {exc.status})"
            return None, describe_api_error(exc, f"reading @{org}/{slug}'s permission")
        perms = data.get("permissions")
        if isinstance(perms, dict) and any(perms.get(p) is True for p in TEAM_WRITE):
            return True, ""
        return False, f"@{org}/{slug} lacks write permission"

    def member(self, org: str, slug: str, login: str) -> tuple[bool | None, str]:
        """(True: an active member, False: not, None: cannot tell; why not)."""
        try:
            data = self._get(f"/orgs/{org}/teams/{slug}/memberships/{login}")
        except GithubException as exc:
            if exc.status == 404:
                return False, f"not a member of @{org}/{slug}"
            if exc.status in (401, 403):
                return None, f"cannot read @{org}/{slug} membership (HTTP {exc.status})"
            return None, describe_api_error(exc, f"checking @{org}/{slug} membership")
        state = data.get("state")
        if state == "active":
            return True, ""
        return False, f"membership of @{org}/{slug} is {state or 'unknown'}, not active"


def is_owner(access: Access, owners: Owners, login: str) -> tuple[bool | None, str]:
    """(True, False, or None when a permission or membership cannot be read; why not)."""
    reasons: list[str] = []
    unknown = False
    if _ascii_lower(login) in owners.users:
        ok, why = access.user_can_write(login)
        if ok:
            return True, ""
        unknown = ok is None
        reasons.append(why)
    for org, slug in owners.teams:
        # membership first: a token that cannot read it (GITHUB_TOKEN) says so (403), where
        # the team's repository permission would answer an ambiguous 404
        ok, why = access.member(org, slug, login)
        if ok:
            ok, why = access.team_can_write(org, slug)
            if ok:
                return True, ""
        unknown = unknown or ok is None
        reasons.append(why)
    if owners.emails and not owners.users and not owners.teams:
        reasons.append("e-mail owners cannot be checked through the API (name users by @login)")
    return (None if unknown else False), ("; ".join(reasons) or owners.shown)
