"""GitHub context from the standard Actions variables, a PyGithub client, the job summary.

Variables read: ``GITHUB_TOKEN`` (or ``GH_TOKEN``), ``GITHUB_REPOSITORY``, ``GITHUB_EVENT_PATH``,
``GITHUB_API_URL`` (GitHub Enterprise, and how the tests point the gate at a local server),
``GITHUB_SERVER_URL``, ``GITHUB_RUN_ID``, ``GITHUB_STEP_SUMMARY``, ``GITHUB_OUTPUT``.
The token is never printed, logged or put into a message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from github import Auth, Github, GithubException

from gate.config.schema import GateConfig, SuiteConfig
from gate.config.yamlio import load_yaml, model_from_doc
from gate.errors import ConfigError, GitHubContextError

DEFAULT_API_URL = "https://api.github.com"
STEP_SUMMARY_LIMIT = 1024 * 1024  # bytes per step


@dataclass(frozen=True)
class PullRef:
    """What the event payload says about the pull request (all optional but the number)."""

    number: int
    base_sha: str | None = None
    head_sha: str | None = None
    author: str | None = None
    head_repo: str | None = None
    base_repo: str | None = None


def env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def token() -> str:
    value = env("GITHUB_TOKEN") or env("GH_TOKEN")
    if value is None:
        raise GitHubContextError("GITHUB_TOKEN is not set (pass it as env: in the workflow step)")
    return value


def repository() -> str:
    value = env("GITHUB_REPOSITORY")
    if value is None or value.count("/") != 1:
        raise GitHubContextError("GITHUB_REPOSITORY is not set to owner/name")
    return value


def api_url() -> str:
    return (env("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")


def run_url() -> str | None:
    """Link to the current workflow run (where the job summary is)."""
    server, repo, run = env("GITHUB_SERVER_URL"), env("GITHUB_REPOSITORY"), env("GITHUB_RUN_ID")
    if server and repo and run:
        return f"{server.rstrip('/')}/{repo}/actions/runs/{run}"
    return None


def triggering_run_url() -> str | None:
    """Link to the run this comment is about: under ``workflow_run``, the triggering run
    (built from its numeric id in the event, not from a URL in it); else the current run."""
    payload = event_payload()
    run = payload.get("workflow_run") if payload else None
    run_id = run.get("id") if isinstance(run, dict) else None
    server, repo = env("GITHUB_SERVER_URL"), env("GITHUB_REPOSITORY")
    if isinstance(run_id, int) and not isinstance(run_id, bool) and run_id > 0 and server \
            and repo:
        return f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"
    return run_url()


def _min_interval() -> float | None:
    raw = env("GATE_GITHUB_MIN_INTERVAL_S")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise GitHubContextError(
            f"GATE_GITHUB_MIN_INTERVAL_S must be a number of seconds, not {raw!r}"
        ) from None
    if value < 0:
        raise GitHubContextError("GATE_GITHUB_MIN_INTERVAL_S must not be negative")
    return value


def client() -> Github:
    """A PyGithub client honouring ``GITHUB_API_URL``. Close it when done.

    PyGithub spaces requests (0.25 s) and writes (1 s) to stay clear of GitHub's secondary
    rate limits; ``GATE_GITHUB_MIN_INTERVAL_S`` overrides both (the tests set 0)."""
    interval = _min_interval()
    return Github(
        base_url=api_url(),
        auth=Auth.Token(token()),
        per_page=100,
        timeout=30,
        seconds_between_requests=0.25 if interval is None else interval,
        seconds_between_writes=1.0 if interval is None else interval,
    )


def event_payload() -> dict[str, Any] | None:
    """The webhook payload of the event that started the workflow, or None outside Actions."""
    path = env("GITHUB_EVENT_PATH")
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError.one(path, None, "GITHUB_EVENT_PATH names a missing file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError.one(path, None, f"cannot read the event payload: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError.one(path, None, "the event payload is not a JSON object")
    return data


def _str(obj: Any, *keys: str) -> str | None:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj if isinstance(obj, str) and obj else None


def pull_from_payload(payload: dict[str, Any]) -> PullRef | None:
    pr = payload.get("pull_request")
    if not isinstance(pr, dict):
        return None
    number = pr.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        return None
    return PullRef(
        number=number,
        base_sha=_str(pr, "base", "sha"),
        head_sha=_str(pr, "head", "sha"),
        author=_str(pr, "user", "login"),
        head_repo=_str(pr, "head", "repo", "full_name"),
        base_repo=_str(pr, "base", "repo", "full_name"),
    )


def step_summary(markdown: str) -> bool:
    """Append to ``$GITHUB_STEP_SUMMARY`` when set, keeping the step under its 1 MiB limit.

    Returns whether anything was written."""
    path = env("GITHUB_STEP_SUMMARY")
    if path is None:
        return False
    target = Path(path)
    used = target.stat().st_size if target.exists() else 0
    budget = STEP_SUMMARY_LIMIT - used - 1
    if budget <= 0:
        return False
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    if len(text.encode("utf-8")) > budget:
        notice = "\n\n_[gate: truncated to stay within the 1 MiB job-summary limit]_\n"
        room = budget - len(notice.encode("utf-8"))
        if room <= 0:
            return False
        cut = text.encode("utf-8")[:room].decode("utf-8", "ignore")
        text = cut.rsplit("\n", 1)[0] + notice
    with target.open("a", encoding="utf-8") as fh:
        fh.write(text)
    return True


def set_output(name: str, value: str) -> None:
    """Write ``name=value`` to ``$GITHUB_OUTPUT`` when set (single-line values only)."""
    path = env("GITHUB_OUTPUT")
    if path is None:
        return
    if "\n" in value:
        raise ValueError("multi-line step outputs need a delimiter")
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write(f"{name}={value}\n")


def describe_api_error(exc: GithubException, doing: str) -> str:
    """``GitHub API 404 reading reviews: Not Found`` (never includes headers or the token)."""
    message = ""
    if isinstance(exc.data, dict):
        raw = exc.data.get("message")
        message = raw if isinstance(raw, str) else ""
    status = exc.status if exc.status else "error"
    return f"GitHub API {status} {doing}" + (f": {message}" if message else "")


def load_suite(config: str) -> SuiteConfig:
    """The ``suite`` section of gate.yaml (paths of registry, prompts, tools, tasks)."""
    doc = load_yaml(Path(config), config)
    return model_from_doc(GateConfig, doc).suite
