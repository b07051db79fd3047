"""A local GitHub: a real HTTP server on 127.0.0.1 implementing the REST endpoints gate uses.

PyGithub is driven for real against it through ``GITHUB_API_URL``. State is held in memory so
tests can assert what was written (comments, commit statuses) and inject failures.

Endpoints: GET /user; GET /repos/{o}/{r}; GET /repos/{o}/{r}/pulls/{n};
GET /repos/{o}/{r}/pulls/{n}/reviews (paginated); GET /repos/{o}/{r}/issues/{n};
GET|POST /repos/{o}/{r}/issues/{n}/comments (paginated with a Link header);
PATCH|DELETE /repos/{o}/{r}/issues/comments/{id}; GET /repos/{o}/{r}/contents/{path}?ref=;
GET /repos/{o}/{r}/commits/{sha}; POST /repos/{o}/{r}/statuses/{sha};
GET /orgs/{org}/teams/{slug}/memberships/{user};
GET /repos/{o}/{r}/pulls (state open/closed/all; head=owner:branch);
GET /repos/{o}/{r}/branches/{b}; GET /repos/{o}/{r}/compare/{base}...{head} (ancestry from the
parents each commit was given); GET /repos/{o}/{r}/collaborators/{u}/permission (a login not
listed has ``read``: a public repository); GET /orgs/{org}/teams/{slug}/repos/{o}/{r} (404
unless the team was given a permission).

Contents follow GitHub's symlink rules: a path through a symlinked directory is 404; a symlink
to a regular file answers with that file (its own ``path``); any other symlink answers
``type: symlink``; a directory answers its listing, where a symlink is ``type: symlink``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from paths import WEBHOOKS

COMMENT_LIMIT = 65_536
STATUS_DESCRIPTION_LIMIT = 140


@dataclass
class Review:
    id: int
    user: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
    commit_id: str
    submitted_at: str | None


@dataclass
class Comment:
    id: int
    user: str
    body: str
    updated: int = 0


@dataclass
class Pull:
    number: int
    author: str
    head_sha: str
    base_sha: str
    head_repo: str
    base_ref: str = "main"
    head_ref: str = "feature"
    state: str = "open"
    reviews: list[Review] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)


@dataclass
class Repo:
    full_name: str
    default_branch: str = "main"
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> path -> content
    pulls: dict[int, Pull] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    branches: dict[str, str] = field(default_factory=dict)  # name -> tip sha
    parents: dict[str, list[str]] = field(default_factory=dict)  # sha -> parent shas
    symlinks: dict[str, dict[str, str]] = field(default_factory=dict)  # sha -> path -> target
    permissions: dict[str, str] = field(default_factory=dict)  # lower login -> admin/write/...
    team_permissions: dict[tuple[str, str], str] = field(default_factory=dict)

    def is_ancestor(self, old: str, new: str) -> bool:
        seen, todo = set(), [new]
        while todo:
            sha = todo.pop()
            if sha == old:
                return True
            if sha not in seen:
                seen.add(sha)
                todo.extend(self.parents.get(sha, []))
        return False


@dataclass
class Failure:
    method: str
    path: re.Pattern[str]
    status: int
    message: str


class FakeGitHub:
    """In-memory GitHub behind a ThreadingHTTPServer on an ephemeral loopback port."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, str] = {}  # token -> login
        self.installation_tokens: set[str] = set()  # GET /user answers 403
        self.repos: dict[str, Repo] = {}
        self.teams: dict[tuple[str, str], dict[str, str]] = {}  # (org, slug) -> login -> state
        self.failures: list[Failure] = []
        self.requests: list[tuple[str, str]] = []  # (method, path?query)
        # Called with (method, path) before a request takes the lock: tests use it to hold
        # concurrent clients at a chosen point (a barrier) or to jitter their interleaving.
        self.before_request: Callable[[str, str], None] | None = None
        self._ids = 1000
        self._clock = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # --- state set-up ---------------------------------------------------------------------

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def tick(self) -> str:
        self._clock += 1
        return f"2024-05-01T12:{self._clock // 60:02d}:{self._clock % 60:02d}Z"

    def add_token(self, token: str, login: str, *, installation: bool = False) -> None:
        self.tokens[token] = login
        if installation:
            self.installation_tokens.add(token)

    def add_repo(self, full_name: str) -> Repo:
        repo = Repo(full_name)
        self.repos[full_name] = repo
        return repo

    def add_commit(self, repo: str, sha: str, files: dict[str, str | bytes],
                   parents: list[str] | None = None,
                   symlinks: dict[str, str] | None = None) -> None:
        self.repos[repo].files[sha] = {
            p: t.encode() if isinstance(t, str) else t for p, t in files.items()}
        self.repos[repo].symlinks[sha] = dict(symlinks or {})
        if parents is not None:
            self.repos[repo].parents[sha] = list(parents)

    def add_pull(self, repo: str, number: int, author: str, base_sha: str, head_sha: str,
                 head_repo: str | None = None, *, base_ref: str | None = None,
                 head_ref: str = "feature", state: str = "open") -> Pull:
        """A PR; its base branch's tip is ``base_sha`` unless already set, and the head's
        parent is ``base_sha`` unless the head commit was given parents."""
        target = self.repos[repo]
        ref = base_ref or target.default_branch
        pull = Pull(number, author, head_sha, base_sha, head_repo or repo, ref, head_ref, state)
        target.pulls[number] = pull
        target.branches.setdefault(ref, base_sha)
        target.parents.setdefault(head_sha, [base_sha])
        return pull

    def set_permission(self, repo: str, login: str, permission: str) -> None:
        """admin, write (also what ``maintain`` reports), read (also ``triage``), none."""
        self.repos[repo].permissions[login.lower()] = permission

    def set_team_permission(self, repo: str, org: str, slug: str, permission: str) -> None:
        """admin, maintain, push, triage or pull."""
        self.repos[repo].team_permissions[(org, slug)] = permission

    def add_review(self, repo: str, number: int, user: str, state: str, commit_id: str) -> Review:
        review = Review(self.next_id(), user, state, commit_id,
                        None if state == "PENDING" else self.tick())
        self.repos[repo].pulls[number].reviews.append(review)
        return review

    def dismiss_review(self, repo: str, number: int, review_id: int) -> None:
        for review in self.repos[repo].pulls[number].reviews:
            if review.id == review_id:
                review.state = "DISMISSED"

    def add_comment(self, repo: str, number: int, user: str, body: str) -> Comment:
        comment = Comment(self.next_id(), user, body)
        self.repos[repo].pulls[number].comments.append(comment)
        return comment

    def add_team(self, org: str, slug: str, members: dict[str, str]) -> None:
        self.teams[(org, slug)] = members

    def fail(self, method: str, path_regex: str, status: int, message: str) -> None:
        """Answer matching requests with ``status`` and ``{"message": message}``."""
        self.failures.append(Failure(method.upper(), re.compile(path_regex), status, message))

    # --- JSON shapes ----------------------------------------------------------------------

    def user_json(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": int(hashlib.sha256(login.encode()).hexdigest()[:6], 16),
            "type": "Bot" if login.endswith("[bot]") else "User",
            "url": f"{self.url}/users/{login}",
            "html_url": f"https://github.example/{login}",
        }

    def repo_json(self, repo: Repo) -> dict[str, Any]:
        owner, name = repo.full_name.split("/")
        return {
            "id": int(hashlib.sha256(repo.full_name.encode()).hexdigest()[:6], 16),
            "name": name,
            "full_name": repo.full_name,
            "owner": self.user_json(owner),
            "private": False,
            "default_branch": repo.default_branch,
            "url": f"{self.url}/repos/{repo.full_name}",
            "html_url": f"https://github.example/{repo.full_name}",
        }

    def pull_json(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        base = f"{self.url}/repos/{repo.full_name}"
        head_repo = self.repos.get(pull.head_repo) or Repo(pull.head_repo)
        return {
            "id": pull.number * 10,
            "number": pull.number,
            "state": pull.state,
            "title": f"PR {pull.number}",
            "url": f"{base}/pulls/{pull.number}",
            "issue_url": f"{base}/issues/{pull.number}",
            "html_url": f"https://github.example/{repo.full_name}/pull/{pull.number}",
            "user": self.user_json(pull.author),
            "head": {"sha": pull.head_sha, "ref": pull.head_ref, "label": pull.head_ref,
                     "repo": self.repo_json(head_repo)},
            "base": {"sha": pull.base_sha, "ref": pull.base_ref,
                     "label": pull.base_ref, "repo": self.repo_json(repo)},
        }

    def issue_json(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        base = f"{self.url}/repos/{repo.full_name}"
        return {
            "id": pull.number * 10 + 1,
            "number": pull.number,
            "state": "open",
            "title": f"PR {pull.number}",
            "url": f"{base}/issues/{pull.number}",
            "comments_url": f"{base}/issues/{pull.number}/comments",
            "html_url": f"https://github.example/{repo.full_name}/pull/{pull.number}",
            "user": self.user_json(pull.author),
            "pull_request": {"url": f"{base}/pulls/{pull.number}"},
        }

    def comment_json(self, repo: Repo, pull: Pull, comment: Comment) -> dict[str, Any]:
        return {
            "id": comment.id,
            "url": f"{self.url}/repos/{repo.full_name}/issues/comments/{comment.id}",
            "html_url": f"https://github.example/{repo.full_name}/pull/{pull.number}"
            f"#issuecomment-{comment.id}",
            "issue_url": f"{self.url}/repos/{repo.full_name}/issues/{pull.number}",
            "body": comment.body,
            "user": self.user_json(comment.user),
            "created_at": "2024-05-01T12:00:00Z",
            "updated_at": "2024-05-01T12:00:00Z",
        }

    def review_json(self, repo: Repo, pull: Pull, review: Review) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": review.id,
            "user": self.user_json(review.user),
            "body": "",
            "state": review.state,
            "commit_id": review.commit_id,
            "html_url": f"https://github.example/{repo.full_name}/pull/{pull.number}"
            f"#pullrequestreview-{review.id}",
            "pull_request_url": f"{self.url}/repos/{repo.full_name}/pulls/{pull.number}",
        }
        if review.submitted_at is not None:
            data["submitted_at"] = review.submitted_at
        return data

    # --- convenience for assertions --------------------------------------------------------

    def statuses(self, repo: str, sha: str | None = None) -> list[dict[str, Any]]:
        return [s for s in self.repos[repo].statuses if sha is None or s["sha"] == sha]

    def latest_status(self, repo: str, sha: str, context: str) -> dict[str, Any] | None:
        """The status a combined status shows for ``context`` on ``sha``: the latest posted."""
        found = [s for s in self.statuses(repo, sha) if s["context"] == context]
        return found[-1] if found else None

    def comments(self, repo: str, number: int) -> list[Comment]:
        return list(self.repos[repo].pulls[number].comments)




def _handler_for(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class GitHubHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            return

        # --- plumbing ---------------------------------------------------------------------

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"message": message,
                                "documentation_url": "https://docs.github.com/rest"})

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            return json.loads(raw) if raw else {}

        def _login(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            parts = auth.split(None, 1)
            if len(parts) != 2 or parts[0].lower() not in ("token", "bearer"):
                return None
            token = parts[1]
            if token not in fake.tokens:
                return None
            return fake.tokens[token]

        def _paginate(self, items: list[Any], path: str, query: dict[str, list[str]]) -> None:
            per_page = max(1, min(100, int(query.get("per_page", ["30"])[0])))
            page = max(1, int(query.get("page", ["1"])[0]))
            last = max(1, -(-len(items) // per_page))
            chunk = items[(page - 1) * per_page: page * per_page]
            links = []
            if page < last:
                links.append(f'<{fake.url}{path}?per_page={per_page}&page={page + 1}>; rel="next"')
                links.append(f'<{fake.url}{path}?per_page={per_page}&page={last}>; rel="last"')
            if page > 1:
                links.append(f'<{fake.url}{path}?per_page={per_page}&page=1>; rel="first"')
                links.append(f'<{fake.url}{path}?per_page={per_page}&page={page - 1}>; rel="prev"')
            self._send(200, chunk, {"Link": ", ".join(links)} if links else None)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            split = urlsplit(self.path)
            path = split.path
            query = parse_qs(split.query)
            if fake.before_request is not None:
                fake.before_request(method, path)
            with fake.lock:
                fake.requests.append((method, self.path))
                for failure in fake.failures:
                    if failure.method == method and failure.path.search(path):
                        self._body()
                        self._error(failure.status, failure.message)
                        return
                login = self._login()
                if login is None:
                    self._body()
                    self._error(401, "Bad credentials")
                    return
                try:
                    self._route(method, path, query, login)
                except KeyError:
                    self._error(404, "Not Found")

        # --- contents, with GitHub's symlink rules -------------------------------------------

        def _file_json(self, path: str, ref: str, content: bytes) -> dict[str, Any]:
            return {
                "type": "file",
                "encoding": "base64",
                "content": base64.encodebytes(content).decode(),
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "size": len(content),
                "sha": hashlib.sha1(content).hexdigest(),
                "url": f"{fake.url}/repos/contents/{path}?ref={ref}",
            }

        def _contents(self, repo: Repo, ref: str, file_path: str, url_path: str) -> None:
            files = repo.files[ref]
            links = repo.symlinks.get(ref, {})
            parts = file_path.split("/") if file_path else []
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in links:
                    raise KeyError(file_path)  # GitHub does not follow a symlinked directory
            if file_path in links:
                target = posixpath.normpath(
                    posixpath.join(posixpath.dirname(file_path), links[file_path]))
                if target in files:
                    self._send(200, self._file_json(target, ref, files[target]))
                else:
                    self._send(200, {"type": "symlink", "target": links[file_path],
                                     "path": file_path, "name": parts[-1], "size": 0})
                return
            if file_path in files:
                self._send(200, self._file_json(file_path, ref, files[file_path]))
                return
            prefix = f"{file_path}/" if file_path else ""
            entries: dict[str, str] = {}
            for name in [*files, *links]:
                if name.startswith(prefix):
                    first, _sep, more = name[len(prefix):].partition("/")
                    full = prefix + first
                    kind = "dir" if more else ("symlink" if full in links else "file")
                    entries[full] = kind
            if not entries:
                raise KeyError(file_path)
            self._send(200, [{"type": kind, "path": full, "name": full.rsplit("/", 1)[-1]}
                             for full, kind in sorted(entries.items())])

        # --- routes -----------------------------------------------------------------------

        def _route(self, method: str, path: str, query: dict[str, list[str]], login: str) -> None:
            if method == "GET" and path == "/user":
                token = self.headers["Authorization"].split(None, 1)[1]
                if token in fake.installation_tokens:
                    self._error(403, "Resource not accessible by integration")
                else:
                    self._send(200, fake.user_json(login))
                return
            m = re.fullmatch(r"/orgs/([^/]+)/teams/([^/]+)/memberships/([^/]+)", path)
            if m and method == "GET":
                members = fake.teams[(m[1], m[2])]
                state = members[unquote(m[3])]
                self._send(200, {"state": state, "role": "member",
                                 "url": f"{fake.url}{path}"})
                return
            m = re.fullmatch(r"/orgs/([^/]+)/teams/([^/]+)/repos/([^/]+/[^/]+)", path)
            if m and method == "GET":
                target = fake.repos[m[3]]
                level = target.team_permissions[(m[1], m[2])]
                order = ["pull", "triage", "push", "maintain", "admin"]
                perms = {name: order.index(level) >= order.index(name) for name in order}
                self._send(200, fake.repo_json(target) | {"permissions": perms,
                                                          "role_name": level})
                return
            m = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
            if not m:
                raise KeyError(path)
            repo = fake.repos[m[1]]
            rest = m[2] or ""
            if rest == "" and method == "GET":
                self._send(200, fake.repo_json(repo))
                return
            if rest == "/pulls" and method == "GET":
                state = query.get("state", ["open"])[0]
                head = query.get("head", [""])[0]  # "owner:branch", as GitHub filters
                items = [fake.pull_json(repo, p) for _n, p in sorted(repo.pulls.items())
                         if (state == "all" or p.state == state)
                         and head in ("", f"{p.head_repo.split('/')[0]}:{p.head_ref}")]
                self._paginate(items, path, query)
                return
            m = re.fullmatch(r"/branches/(.+)", rest)
            if m and method == "GET":
                name = unquote(m[1])
                self._send(200, {"name": name, "commit": {"sha": repo.branches[name]},
                                 "protected": True})
                return
            m = re.fullmatch(r"/compare/([0-9a-f]{40})\.\.\.([0-9a-f]{40})", rest)
            if m and method == "GET":
                old, new = m[1], m[2]
                if old == new:
                    status = "identical"
                elif repo.is_ancestor(old, new):
                    status = "ahead"
                elif repo.is_ancestor(new, old):
                    status = "behind"
                else:
                    status = "diverged"
                self._send(200, {"status": status, "url": f"{fake.url}{path}"})
                return
            m = re.fullmatch(r"/collaborators/([^/]+)/permission", rest)
            if m and method == "GET":
                user = unquote(m[1])
                level = repo.permissions.get(user.lower(), "read")
                self._send(200, {"permission": level, "role_name": level,
                                 "user": fake.user_json(user)})
                return
            m = re.fullmatch(r"/pulls/(\d+)", rest)
            if m and method == "GET":
                self._send(200, fake.pull_json(repo, repo.pulls[int(m[1])]))
                return
            m = re.fullmatch(r"/pulls/(\d+)/reviews", rest)
            if m and method == "GET":
                pull = repo.pulls[int(m[1])]
                items = [fake.review_json(repo, pull, r) for r in pull.reviews]
                self._paginate(items, path, query)
                return
            m = re.fullmatch(r"/issues/(\d+)", rest)
            if m and method == "GET":
                self._send(200, fake.issue_json(repo, repo.pulls[int(m[1])]))
                return
            m = re.fullmatch(r"/issues/(\d+)/comments", rest)
            if m:
                pull = repo.pulls[int(m[1])]
                if method == "GET":
                    items = [fake.comment_json(repo, pull, c) for c in pull.comments]
                    self._paginate(items, path, query)
                    return
                if method == "POST":
                    body = self._body().get("body", "")
                    if len(body) > COMMENT_LIMIT:
                        self._error(422, "Body is too long (maximum is 65536 characters)")
                        return
                    comment = Comment(fake.next_id(), login, body)
                    pull.comments.append(comment)
                    self._send(201, fake.comment_json(repo, pull, comment))
                    return
            m = re.fullmatch(r"/issues/comments/(\d+)", rest)
            if m and method == "DELETE":
                for pull in repo.pulls.values():
                    for comment in pull.comments:
                        if comment.id == int(m[1]):
                            pull.comments.remove(comment)
                            self.send_response(204)
                            self.send_header("Content-Length", "0")
                            self.end_headers()
                            return
                raise KeyError(rest)
            if m and method == "PATCH":
                for pull in repo.pulls.values():
                    for comment in pull.comments:
                        if comment.id == int(m[1]):
                            body = self._body().get("body", "")
                            if len(body) > COMMENT_LIMIT:
                                self._error(422, "Body is too long (maximum is 65536 characters)")
                                return
                            comment.body = body
                            comment.updated += 1
                            self._send(200, fake.comment_json(repo, pull, comment))
                            return
                raise KeyError(rest)
            m = re.fullmatch(r"/contents/(.*)", rest)
            if m and method == "GET":
                ref = query.get("ref", [repo.default_branch])[0]
                self._contents(repo, ref, unquote(m[1]).strip("/"), path)
                return
            m = re.fullmatch(r"/commits/([0-9a-f]{7,40})", rest)
            if m and method == "GET":
                if m[1] not in repo.files:
                    raise KeyError(m[1])
                self._send(200, {"sha": m[1], "url": f"{fake.url}{path}"})
                return
            m = re.fullmatch(r"/commits/([0-9a-f]{40})/status", rest)
            if m and method == "GET":
                latest: dict[str, dict[str, Any]] = {}
                for status in repo.statuses:
                    if status["sha"] == m[1]:
                        latest[status["context"]] = status
                states = [s["state"] for s in latest.values()]
                combined = ("failure" if {"failure", "error"} & set(states) else
                            "pending" if "pending" in states or not states else "success")
                self._send(200, {"state": combined, "sha": m[1],
                                 "statuses": list(latest.values())})
                return
            m = re.fullmatch(r"/statuses/([0-9a-f]{40})", rest)
            if m and method == "POST":
                data = self._body()
                description = data.get("description") or ""
                if len(description) > STATUS_DESCRIPTION_LIMIT:
                    self._error(422, "description is too long (maximum is 140 characters)")
                    return
                if data.get("state") not in ("error", "failure", "pending", "success"):
                    self._error(422, "state is not included in the list")
                    return
                status = {"id": fake.next_id(), "sha": m[1], "state": data["state"],
                          "description": description, "context": data.get("context", "default"),
                          "target_url": data.get("target_url"), "creator": login}
                repo.statuses.append(status)
                self._send(201, {k: v for k, v in status.items() if k not in ("sha",)}
                           | {"url": f"{fake.url}{path}"})
                return
            raise KeyError(rest)

    return GitHubHandler


@contextmanager
def running() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


# --- event payloads -----------------------------------------------------------------------



def load_event(name: str) -> dict[str, Any]:
    """A vendored payload, e.g. ``pull_request.synchronize`` (see tests/fixtures/webhooks)."""
    data: dict[str, Any] = json.loads((WEBHOOKS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def pull_event(name: str, *, repo: str, number: int, author: str, base_sha: str,
               head_sha: str, head_repo: str | None = None) -> dict[str, Any]:
    """A vendored payload adapted to a scenario (in memory; the vendored file is untouched)."""
    event = load_event(name)
    pr = event["pull_request"]
    pr["number"] = number
    pr["user"]["login"] = author
    pr["base"]["sha"] = base_sha
    pr["head"]["sha"] = head_sha
    pr["base"]["repo"]["full_name"] = repo
    pr["head"]["repo"]["full_name"] = head_repo or repo
    event["repository"]["full_name"] = repo
    if "number" in event:
        event["number"] = number
    if "review" in event:
        event["review"]["commit_id"] = head_sha
    return event


def use_fake_github(monkeypatch: Any, fake: FakeGitHub, tmp_path: Path, *, token: str,
                    repo: str, event: dict[str, Any]) -> None:
    """Point gate at ``fake`` as Actions would: the standard variables and an event file."""
    for key, value in {
        "GITHUB_API_URL": fake.url, "GITHUB_TOKEN": token, "GITHUB_REPOSITORY": repo,
        "GATE_GITHUB_MIN_INTERVAL_S": "0", "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "99", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "event.json").write_text(json.dumps(event))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(tmp_path / "event.json"))


def run_gate(*argv: str) -> int:
    """``gate.cli.main`` with only the GitHub commands registered (isolated from the others)."""
    import gate.cli

    saved = gate.cli.COMMAND_MODULES
    setattr(gate.cli, "COMMAND_MODULES", ("gate.github.cli",))  # noqa: B010
    try:
        return gate.cli.main(list(argv))
    finally:
        setattr(gate.cli, "COMMAND_MODULES", saved)  # noqa: B010


# The guard scenarios' repository: a gate.yaml with the simulated provider, and a registry where
# vendor/new-model is pending (the base) or adopted (a PR that flips it).
GATE_YAML = "version: 1\nproviders:\n  mock:\n    type: mock\n"
REGISTRY_PENDING = """\
models:
  - id: vendor/old-model
    provider: mock
    evaluation_status: adopted
  - id: vendor/new-model
    provider: mock
    evaluation_status: pending-human-review
"""
REGISTRY_ADOPTED = REGISTRY_PENDING.replace("evaluation_status: pending-human-review",
                                            "evaluation_status: adopted")
