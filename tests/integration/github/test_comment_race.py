"""Two (or more) ``gate comment`` runs at once leave exactly one comment, always."""

from __future__ import annotations

import random
import re
import threading
from pathlib import Path

import pytest
from fake_github import FakeGitHub, pull_event, use_fake_github

from gate.github.comment import MARKER, post_comment

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it

REPO = "acme/agents"
TOKEN = "ghp_race_token_0123456789"
ME = "gate-bot"
LIST = re.compile(r"/issues/\d+/comments$")


def github_scenario(fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This module's GitHub (the ``gh`` fixture of tests/conftest.py serves it)."""
    fake.add_token(TOKEN, ME)
    fake.add_repo(REPO)
    event = pull_event("pull_request.synchronize", repo=REPO, number=1, author="carol",
                       base_sha="b" * 40, head_sha="c" * 40)
    use_fake_github(monkeypatch, fake, tmp_path, token=TOKEN, repo=REPO, event=event)


def race(number: int, bodies: list[str]) -> list[BaseException]:
    errors: list[BaseException] = []

    def one(body: str) -> None:
        try:
            post_comment(REPO, number, body, None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_both_list_before_either_creates_still_one_comment(gh: FakeGitHub) -> None:
    # The worst interleaving, forced: both runs list (and find nothing) before either creates.
    gh.add_pull(REPO, 1, "carol", "b" * 40, "c" * 40)
    barrier = threading.Barrier(2, timeout=20)
    first_lists: list[int] = []

    def hold(method: str, path: str) -> None:
        if method == "GET" and LIST.search(path) and len(first_lists) < 2:
            first_lists.append(1)
            barrier.wait()

    gh.before_request = hold
    assert race(1, [f"{MARKER}\nA", f"{MARKER}\nB"]) == []
    posts = [p for m, p in gh.requests if m == "POST" and LIST.search(p)]
    assert len(posts) == 2  # both created: the race really happened
    comments = gh.comments(REPO, 1)
    assert len(comments) == 1
    assert comments[0].body in (f"{MARKER}\nA", f"{MARKER}\nB")


@pytest.mark.parametrize("runs", [2, 3])
def test_many_tries_with_jitter_always_one_comment(gh: FakeGitHub, runs: int) -> None:
    rng = random.Random(runs)
    lock = threading.Lock()

    def jitter(method: str, path: str) -> None:
        with lock:
            delay = rng.uniform(0, 0.004)
        threading.Event().wait(delay)

    gh.before_request = jitter
    for number in range(1, 26):
        gh.add_pull(REPO, number, "carol", "b" * 40, "c" * 40)
        gh.add_comment(REPO, number, "mallory", f"{MARKER}\nspoof")  # never ours
        bodies = [f"{MARKER}\nrun {i}" for i in range(runs)]
        assert race(number, bodies) == []
        mine = [c for c in gh.comments(REPO, number) if c.user == ME]
        assert len(mine) == 1, (number, [c.body for c in mine])
        assert mine[0].body in bodies
        assert [c.body for c in gh.comments(REPO, number) if c.user != ME] == [f"{MARKER}\nspoof"]


def test_existing_duplicates_are_collapsed_onto_the_oldest(gh: FakeGitHub) -> None:
    gh.add_pull(REPO, 1, "carol", "b" * 40, "c" * 40)
    oldest = gh.add_comment(REPO, 1, ME, f"{MARKER}\nold 1")
    gh.add_comment(REPO, 1, ME, f"{MARKER}\nold 2")
    action, _url = post_comment(REPO, 1, f"{MARKER}\nnew", None)
    assert action == "updated"
    assert [(c.id, c.body) for c in gh.comments(REPO, 1)] == [(oldest.id, f"{MARKER}\nnew")]
