"""``gate comment``: the single results comment on a pull request, updated in place.

The comment is found by a hidden marker *and* by its author being the token's own login (a
marker alone can be spoofed by anyone who can comment). The login comes from ``GET /user``;
the Actions ``GITHUB_TOKEN`` (an installation token) gets 403 there, and then the author is
taken to be ``github-actions[bot]``. A GitHub App token posts as ``<app-slug>[bot]``: pass
``--author`` (or set ``GATE_COMMENT_AUTHOR``) in that case. Every page of comments is read.

GitHub rejects comment bodies over 65,536 characters (HTTP 422); a longer report is cut at a
line boundary, open code fences and ``<details>`` are closed, and a notice links to the job
summary, which gets the full report (up to its own 1 MiB limit).

Two runs at once leave exactly one comment. GitHub has no "create if absent", so each run
settles instead: list ours; if none, create one and list again (a concurrent run may have
created one too); keep the *oldest* of ours (lowest id), delete the others, and edit the
survivor. The oldest is never deleted by anyone (every run keeps the oldest it sees, and a
comment is created after every older one is visible), and every run that created a younger
one sees the oldest when it lists after creating, so deletes its own. An edit that finds the
survivor gone (404: a run that saw an older one deleted it) settles again.

The reports are gate's own markdown, neutralised again as a whole document (no hidden marker
and no mention can come through, whatever produced report.md).

Posted from a ``workflow_run`` workflow (``gate-comment.yml``), the reports come from the PR's
own run as an artifact: ``--runs-in DIR`` reads them as untrusted data (``gate.github.artifact``)
and ``--head-sha SHA`` (the triggering run's head commit, from the event) must be the head of
PR ``--pr N`` as the API reports it, with ``--head-repo`` and ``--head-branch`` (the run's head
repository and branch, from the event) its head repository and branch, else nothing is posted:
a forged PR number cannot put one PR's report on another PR (even one sharing its head commit),
nor on an issue.

The same comment carries the states without a report (``gate.report.states``): ``--evaluating``
when the gate run starts, ``--no-report REASON`` when it ends without a result. Posted from
``workflow_run`` they have no artifact, hence no PR number: given the run's head (commit,
repository, branch, from the event) and no ``--pr``, they go to the one open PR with that head,
found through the API; none (the PR moved on) or several post nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from github import Github, GithubException
from requests import RequestException

from gate.errors import (
    CommentRaceError,
    ConfigError,
    GitHubContextError,
    UntrustedArtifactError,
)
from gate.github.artifact import read_untrusted_reports
from gate.github.context import (
    client,
    describe_api_error,
    event_payload,
    pull_from_payload,
    repository,
    run_url,
    step_summary,
    triggering_run_url,
)
from gate.github.runhead import RunHead, pull_of_run, verify_head
from gate.report.blocks import parse_report
from gate.report.neutralize import neutralize
from gate.report.plan import Where, full_document, plan_comment
from gate.report.states import evaluating_report, no_report
from gate.rundir import RunDir

MARKER = "<!-- gate-report -->"
COMMENT_LIMIT = 65_536
FALLBACK_LOGIN = "github-actions[bot]"
SEPARATOR = "\n\n---\n\n"
SETTLE_ROUNDS = 5


def utf16_len(text: str) -> int:
    """Length as GitHub (JavaScript) counts it: UTF-16 code units, >= the code-point count."""
    return len(text.encode("utf-16-le")) // 2


def _prefix_within(text: str, units: int) -> str:
    """The longest prefix of ``text`` whose UTF-16 length is at most ``units``."""
    if units <= 0:
        return ""
    cut = text[:units]
    while utf16_len(cut) > units:
        excess = utf16_len(cut) - units
        cut = cut[: len(cut) - max(1, excess // 2)]
    return cut


def fit_comment(body: str, limit: int = COMMENT_LIMIT, link: str | None = None) -> str:
    """``body`` unchanged if it is shorter than ``limit``, else safely truncated below it."""
    if utf16_len(body) < limit:
        return body
    where = f"the [job summary]({link})" if link else "the job summary of this workflow run"
    notice = (
        f"\n\n> [!WARNING]\n> The report was truncated to fit GitHub's {limit:,}-character "
        f"comment limit. The full report is in {where}.\n"
    )
    reserve = 200  # closing fences and tags
    cut = _prefix_within(body, limit - 1 - utf16_len(notice) - reserve)
    if "\n" in cut:
        cut = cut.rsplit("\n", 1)[0]
    closing = ""
    if cut.count("```") % 2 == 1:
        closing += "\n```"
    open_details = len(re.findall(r"<details\b", cut)) - cut.count("</details>")
    closing += "\n</details>" * max(0, min(open_details, 10))
    return cut + closing + notice


def read_reports(run_dirs: list[str]) -> list[str]:
    reports = []
    for run_dir in run_dirs:
        path = RunDir(run_dir).report_path
        try:
            reports.append(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError.one(
                str(path), None, "report not found (run `gate report --run DIR` first)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError.one(str(path), None, f"cannot read the report: {exc}") from None
    return reports


def _pr_json(run_dirs: list[str]) -> tuple[int | None, str | None]:
    """``DIR/pr.json``: ``{"number": N, "repository": "owner/name"}`` (repository optional)."""
    for run_dir in run_dirs:
        path = Path(run_dir) / "pr.json"
        if not path.exists():
            continue
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError.one(str(path), None, f"cannot read: {exc}") from None
        number = data.get("number") if isinstance(data, dict) else None
        if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
            raise ConfigError.one(str(path), None, '"number" must be a positive integer')
        repo = data.get("repository")
        return number, repo if isinstance(repo, str) and repo.count("/") == 1 else None
    return None, None


def resolve_target(pr: int | None, run_dirs: list[str]) -> tuple[str, int]:
    """(owner/name, PR number) from --pr, the event payload, or DIR/pr.json, in that order."""
    number = pr
    if number is None:
        payload = event_payload()
        ref = pull_from_payload(payload) if payload else None
        number = ref.number if ref else None
    file_repo = None
    if number is None:
        number, file_repo = _pr_json(run_dirs)
    if number is None:
        raise GitHubContextError(
            "no pull request number: not a pull_request event, no --pr, and no DIR/pr.json"
        )
    try:
        repo = repository()
    except GitHubContextError:
        if file_repo is None:
            raise
        repo = file_repo
    return repo, number


def own_login(gh: Github, override: str | None) -> tuple[str, str]:
    """(login, how it was found)."""
    if override:
        return override, "--author"
    try:
        return gh.get_user().login, "GET /user"
    except GithubException as exc:
        if exc.status == 403:
            return FALLBACK_LOGIN, "GET /user is 403 for an Actions token: assumed"
        raise


def ours(issue: Any, login: str) -> list[Any]:
    """Our gate comments (marker and author), oldest first; every page is read."""
    found = [
        c for c in issue.get_comments()
        if MARKER in (c.body or "")
        and (c.user.login if c.user is not None else "").lower() == login.lower()
    ]
    return sorted(found, key=lambda c: c.id)


def _delete(comment: Any) -> None:
    try:
        comment.delete()
    except GithubException as exc:
        if exc.status != 404:  # already deleted by a concurrent run
            raise


def settle(issue: Any, login: str, body: str) -> tuple[str, str]:
    """Leave exactly one comment of ours, with ``body``. Returns (action, its URL)."""
    created: Any = None
    for _round in range(SETTLE_ROUNDS):
        mine = ours(issue, login)
        if created is not None and all(c.id != created.id for c in mine):
            mine = sorted([*mine, created], key=lambda c: c.id)  # listing may lag our write
        if not mine:
            created = issue.create_comment(body)
            continue  # list again: a concurrent run may have created one too
        survivor, *younger = mine
        for duplicate in younger:
            _delete(duplicate)
        try:
            if survivor.body != body:
                survivor.edit(body)
        except GithubException as exc:
            if exc.status == 404:
                continue  # deleted by a run that saw an older one: settle again
            raise
        action = "created" if created is not None and survivor.id == created.id else "updated"
        return action, survivor.html_url
    raise CommentRaceError(f"could not settle on one comment in {SETTLE_ROUNDS} rounds")


def post_comment(repo_name: str, number: int, body: str, author: str | None) -> tuple[str, str]:
    """Create or update the comment. Returns (``created``/``updated``, its URL)."""
    gh = client()
    try:
        login, _how = own_login(gh, author)
        issue = gh.get_repo(repo_name).get_issue(number)
        return settle(issue, login, body)
    finally:
        gh.close()


def _evaluating(changes: str | None, head_sha: str | None) -> str:
    """The "evaluating" state: the sweeps of ``gate changes`` JSON, the PR's head."""
    data = None
    if changes is not None:
        try:
            data = json.loads(Path(changes).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError.one(changes, None, f"cannot read: {exc}") from None
    if head_sha is None:
        payload = event_payload()
        ref = pull_from_payload(payload) if payload else None
        head_sha = ref.head_sha if ref else None
    return evaluating_report(data, head_sha, triggering_run_url())


def _inert(text: str) -> str:
    return neutralize(text, context="document")


@dataclass(frozen=True)
class Source:
    """What to post: run directories, an artifact's reports, or a state without a report."""

    run_dirs: list[str] | None = None
    runs_in: str | None = None
    evaluating: bool = False
    changes: str | None = None  # with evaluating: the `gate changes` JSON
    no_report: str | None = None  # a key of gate.report.states.NO_REPORT

    @property
    def state(self) -> bool:
        return self.evaluating or self.no_report is not None

    def texts(self, head_sha: str | None) -> list[str]:
        if self.evaluating:
            return [_evaluating(self.changes, head_sha)]
        if self.no_report is not None:
            return [no_report(self.no_report, head_sha, run_url=triggering_run_url())]
        if self.runs_in is not None:
            return read_untrusted_reports(Path(self.runs_in))
        return read_reports(self.run_dirs or [])


def run_comment(run_dirs: list[str] | None, pr: int | None, author: str | None,
                runs_in: str | None = None, head_sha: str | None = None,
                head_repo: str | None = None, head_branch: str | None = None,
                evaluating: bool = False, changes: str | None = None,
                no_report: str | None = None) -> int:
    """Post ``DIR/report.md`` of each of ``run_dirs``, or (``runs_in``, an artifact from
    another run) the reports under that directory, read as untrusted data, or a state without
    a report (``evaluating``, ``no_report``). A state for a run's head (``head_sha``) and no
    ``pr`` goes to the one open PR with that head, found through the API."""
    return post_source(Source(run_dirs, runs_in, evaluating, changes, no_report), pr, author,
                       RunHead(head_sha, head_repo, head_branch) if head_sha else None)


def post_source(source: Source, pr: int | None, author: str | None,
                run: RunHead | None) -> int:
    try:
        texts = source.texts(run.sha if run else None)
    except UntrustedArtifactError as exc:
        print(f"gate comment: refused, nothing posted: {exc}")
        return 1
    reports = [parse_report(t).map(_inert) for t in texts]
    full = full_document(reports)
    if run is None:
        step_summary(full)
    try:
        if run is not None and pr is None and source.state:
            repo_name = repository()
            found = pull_of_run(repo_name, run)
            if found is None:
                return 0
            number = found
        else:
            repo_name, number = resolve_target(pr, source.run_dirs or [])
            if run is not None:  # nothing is written, the job summary included, before
                verify_head(repo_name, number, run)
        planned = plan_comment(reports, COMMENT_LIMIT, Where(run_url()), head=f"{MARKER}\n",
                               now=datetime.now(UTC))
        body = fit_comment(planned, COMMENT_LIMIT, run_url())  # a safety net: planned fits
        if run is not None:
            step_summary(full)
        action, url = post_comment(repo_name, number, body, author)
    except UntrustedArtifactError as exc:
        print(f"gate comment: refused, nothing posted: {exc}")
        return 1
    except (GitHubContextError, CommentRaceError) as exc:
        print(f"gate comment: {exc}")
        return 1
    except GithubException as exc:
        print(f"gate comment: failed: {describe_api_error(exc, 'posting the PR comment')}")
        if exc.status == 403:
            print("gate comment: the token needs pull-requests: write (fork PRs get a read-only "
                  "token)")
        return 1
    except RequestException as exc:
        print(f"gate comment: failed: cannot reach the GitHub API: {type(exc).__name__}")
        return 1
    print(f"gate comment: {action} {url}")
    return 0
