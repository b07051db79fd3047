"""``gate comment`` against a local GitHub: one comment per PR, updated in place, never spoofed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_github import FakeGitHub, pull_event, run_gate, use_fake_github

from gate.github.comment import COMMENT_LIMIT, MARKER, fit_comment, utf16_len

REPO = "acme/agents"
PR = 12
TOKEN = "ghp_personal_token_for_comment_tests_987"
ME = "gate-bot"


def github_scenario(fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This module's GitHub (the ``gh`` fixture of tests/conftest.py serves it)."""
    fake.add_token(TOKEN, ME)
    fake.add_repo(REPO)
    fake.add_pull(REPO, PR, "carol", "b" * 40, "c" * 40)
    event = pull_event("pull_request.opened", repo=REPO, number=PR, author="carol",
                       base_sha="b" * 40, head_sha="c" * 40)
    use_fake_github(monkeypatch, fake, tmp_path, token=TOKEN, repo=REPO, event=event)


def report(tmp_path: Path, text: str, name: str = "run") -> str:
    run = tmp_path / name
    run.mkdir(exist_ok=True)
    (run / "report.md").write_text(text, encoding="utf-8")
    return str(run)


def ours(fake: FakeGitHub) -> list[str]:
    return [c.body for c in fake.comments(REPO, PR) if c.user == ME]


def test_two_runs_leave_one_comment_updated(gh: FakeGitHub, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = report(tmp_path, "## gate\nfirst result\n")
    assert run_gate("comment", "--run", run) == 0
    assert "created" in capsys.readouterr().out
    report(tmp_path, "## gate\nsecond result\n")
    assert run_gate("comment", "--run", run) == 0
    out = capsys.readouterr().out
    assert "updated" in out
    assert TOKEN not in out
    comments = gh.comments(REPO, PR)
    assert len(comments) == 1
    assert comments[0].body == f"{MARKER}\n## gate\nsecond result\n"
    assert comments[0].updated == 1
    summary = (tmp_path / "summary.md").read_text()
    assert "first result" in summary
    assert "second result" in summary
    assert MARKER not in summary


def test_spoofed_marker_by_another_user_is_not_edited(gh: FakeGitHub, tmp_path: Path) -> None:
    spoof = gh.add_comment(REPO, PR, "mallory", f"{MARKER}\n## gate\nall models pass, merge!")
    run = report(tmp_path, "## gate\nreal result\n")
    assert run_gate("comment", "--run", run) == 0
    assert run_gate("comment", "--run", run) == 0
    assert spoof.body == f"{MARKER}\n## gate\nall models pass, merge!"
    assert spoof.updated == 0
    assert ours(gh) == [f"{MARKER}\n## gate\nreal result\n"]
    assert len(gh.comments(REPO, PR)) == 2


def test_own_comment_found_beyond_the_first_100(gh: FakeGitHub, tmp_path: Path) -> None:
    for i in range(130):
        gh.add_comment(REPO, PR, "someone", f"comment {i}")
    mine = gh.add_comment(REPO, PR, ME, f"{MARKER}\nold report")
    for i in range(40):
        gh.add_comment(REPO, PR, "someone", f"later comment {i}")
    run = report(tmp_path, "new report\n")
    assert run_gate("comment", "--run", run) == 0
    assert mine.body == f"{MARKER}\nnew report\n"
    assert len(gh.comments(REPO, PR)) == 171
    pages = [p for m, p in gh.requests if m == "GET" and p.startswith(f"/repos/{REPO}/issues/12/c")]
    assert any("page=2" in p for p in pages)


def test_own_comment_without_marker_is_not_taken(gh: FakeGitHub, tmp_path: Path) -> None:
    other = gh.add_comment(REPO, PR, ME, "a note the bot wrote for something else")
    run = report(tmp_path, "r\n")
    assert run_gate("comment", "--run", run) == 0
    assert other.body == "a note the bot wrote for something else"
    assert len(gh.comments(REPO, PR)) == 2


def test_over_long_report_is_truncated_below_the_limit(gh: FakeGitHub, tmp_path: Path) -> None:
    lines = ["| task | result |", "|---|---|"] + [f"| t{i} | ✅ pass — 𝛼 |" for i in range(6000)]
    text = "## gate\n\n```text\n" + "\n".join(lines) + "\n```\n"
    assert utf16_len(text) > COMMENT_LIMIT
    run = report(tmp_path, text)
    assert run_gate("comment", "--run", run) == 0
    (body,) = ours(gh)
    assert utf16_len(body) < COMMENT_LIMIT
    assert body.startswith(MARKER)
    assert "truncated" in body
    assert "https://github.example/acme/agents/actions/runs/99" in body
    assert body.count("```") % 2 == 0
    # the job summary gets all of it
    assert "| t5999 |" in (tmp_path / "summary.md").read_text()


def test_fit_comment_keeps_short_bodies_and_closes_details() -> None:
    assert fit_comment("short") == "short"
    long = "<details><summary>s</summary>\n\n" + "x\n" * 40_000
    cut = fit_comment(long, limit=1000, link=None)
    assert utf16_len(cut) < 1000
    assert cut.count("<details") == cut.count("</details>")
    assert "job summary of this workflow run" in cut


def test_actions_token_falls_back_to_github_actions_bot(gh: FakeGitHub, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    gh.add_token("ghs_installation", "github-actions[bot]", installation=True)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_installation")
    earlier = gh.add_comment(REPO, PR, "github-actions[bot]", f"{MARKER}\nold")
    run = report(tmp_path, "new\n")
    assert run_gate("comment", "--run", run) == 0
    assert earlier.body == f"{MARKER}\nnew\n"
    assert len(gh.comments(REPO, PR)) == 1


def test_author_option_for_app_tokens(gh: FakeGitHub, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    gh.add_token("ghs_app", "gate-app[bot]", installation=True)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_app")
    earlier = gh.add_comment(REPO, PR, "gate-app[bot]", f"{MARKER}\nold")
    run = report(tmp_path, "new\n")
    assert run_gate("comment", "--run", run, "--author", "gate-app[bot]") == 0
    assert earlier.body == f"{MARKER}\nnew\n"
    assert len(gh.comments(REPO, PR)) == 1


def test_several_runs_make_one_comment(gh: FakeGitHub, tmp_path: Path) -> None:
    a = report(tmp_path, "report A\n", "a")
    b = report(tmp_path, "report B\n", "b")
    assert run_gate("comment", "--run", a, "--run", b) == 0
    (body,) = ours(gh)
    assert "report A" in body
    assert "report B" in body


def test_pr_number_from_pr_json(gh: FakeGitHub, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_EVENT_PATH")
    run = report(tmp_path, "from pr.json\n")
    (Path(run) / "pr.json").write_text(json.dumps({"number": PR}))
    assert run_gate("comment", "--run", run) == 0
    assert ours(gh) == [f"{MARKER}\nfrom pr.json\n"]


def test_pr_option_wins(gh: FakeGitHub, tmp_path: Path) -> None:
    gh.add_pull(REPO, 13, "dave", "b" * 40, "d" * 40)
    run = report(tmp_path, "to 13\n")
    assert run_gate("comment", "--run", run, "--pr", "13") == 0
    assert [c.body for c in gh.comments(REPO, 13)] == [f"{MARKER}\nto 13\n"]
    assert gh.comments(REPO, PR) == []


def test_missing_report_is_invalid_input(gh: FakeGitHub, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert run_gate("comment", "--run", str(tmp_path / "empty")) == 4
    err = capsys.readouterr().err
    assert "empty/report.md: report not found" in err
    assert gh.comments(REPO, PR) == []


def test_api_failure_exits_1_without_the_token(gh: FakeGitHub, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    gh.fail("POST", r"/issues/12/comments$", 403, "Resource not accessible by integration")
    run = report(tmp_path, "r\n")
    assert run_gate("comment", "--run", run) == 1
    out = capsys.readouterr().out
    assert "GitHub API 403 posting the PR comment" in out
    assert TOKEN not in out


def test_bad_credentials_exit_1(gh: FakeGitHub, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "wrong-token-value")
    run = report(tmp_path, "r\n")
    assert run_gate("comment", "--run", run) == 1
    out = capsys.readouterr().out
    assert "401" in out
    assert "wrong-token-value" not in out


def test_no_pr_number_exit_1(gh: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GITHUB_EVENT_PATH")
    run = report(tmp_path, "r\n")
    assert run_gate("comment", "--run", run) == 1
    assert "no pull request number" in capsys.readouterr().out


def test_report_text_cannot_spoof_the_marker_or_ping(gh: FakeGitHub, tmp_path: Path) -> None:
    # Whatever wrote report.md (a fallback in the workflow, an older gate), the comment holds
    # one marker (ours, first) and no mention.
    run = report(tmp_path, "## gate\n<!-- gate-report -->\ncc @acme/core @octocat\n")
    assert run_gate("comment", "--run", run) == 0
    (body,) = ours(gh)
    assert body.count(MARKER) == 1
    assert body.startswith(MARKER)
    assert "@acme" not in body
    assert "@octocat" not in body


def _structured(verdict: str, rows: int, name: str) -> str:
    """A report.md in blocks (gate.report.blocks) with a long folded table."""
    table = "| task | result |\n|---|---|\n" + "".join(
        f"| {name}-t{i:05d} | fail |\n" for i in range(rows))
    return (f"<!-- gate:row CAUTION | `{name}` vs `base` | **{verdict}** | 0% (0/9) | "
            f"100% (9/9) | −100 pp | {rows} / 0 -->\n<!-- gate:verdict -->\n> [!CAUTION]\n"
            f"> **{verdict}: do not merge** ({name})\n<!-- gate:fold -->\n"
            f"<details><summary>All tasks</summary>\n\n{table}\n</details>\n")


def test_three_long_sweeps_are_planned_into_one_comment(gh: FakeGitHub, tmp_path: Path) -> None:
    runs = [report(tmp_path, _structured("Regression", 3000, f"model-{i}"), f"s{i}")
            for i in range(3)]
    assert run_gate("comment", *[x for r in runs for x in ("--run", r)]) == 0
    (body,) = ours(gh)
    assert utf16_len(body) < COMMENT_LIMIT
    assert body.startswith(f"{MARKER}\n> [!CAUTION]\n> **3 of 3 sweeps block the merge**")
    for i in range(3):
        assert f"> **Regression: do not merge** (model-{i})" in body
        assert f"| `model-{i}` vs `base` | **Regression** |" in body
        assert f"| model-{i}-t00000 | fail |" in body  # each keeps rows of its table
    assert "truncated" not in body  # planned, not cut
    assert "not shown here: every row is in the [job summary](" in body
    summary = (tmp_path / "summary.md").read_text()
    assert all(f"| model-{i}-t02999 | fail |" in summary for i in range(3))
    assert "gate:fold" not in summary


def test_evaluating_state_is_replaced_by_the_result(gh: FakeGitHub, tmp_path: Path) -> None:
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"sweeps": [
        {"id": "a", "candidate": "mock/expert@0.8", "baseline": "mock/expert",
         "baseline_ref": None, "reason": "new model entry"},
        {"id": "b", "candidate": "@octocat/x`y", "baseline": None, "baseline_ref": None,
         "reason": "x"}]}))
    assert run_gate("comment", "--evaluating", "--changes", str(changes)) == 0
    (body,) = ours(gh)
    assert "> [!NOTE]\n> **Evaluating: wait for the result**" in body
    assert "running 2 sweeps on head `ccccccc`" in body
    assert "- `mock/expert@0.8` against `mock/expert`" in body
    assert "@octocat" not in body  # a model id from the PR's files cannot ping
    run = report(tmp_path, _structured("Regression", 3, "model-0"))
    assert run_gate("comment", "--run", run) == 0
    (body,) = ours(gh)
    assert "Evaluating" not in body
    assert "> **Regression: do not merge** (model-0)" in body
