"""The comment's states without a sweep report: "evaluating" while the gate run works, "no
report" when it ends without one (fork or draft PR, nothing to sweep, a failed smoke test,
a run cancelled, timed out or never started, an artifact missing), and "decided earlier" when
the comparison ledger refused a sweep because an earlier run decided the same comparison.

Each is a report.md of its own, in the same form as a sweep's (gate.report.blocks): a summary
row, then a verdict block opening with a GitHub alert whose first line is the word, the
consequence for the merge and what happened to the required check, so the planned comment,
the summary table of several reports and a reader treat it like any verdict. The words are the
product's (gate.report.verdict lists them all). Every text is gate's own; the only values from
outside (a head sha, a sweep's name, model ids from ``gate changes``, a ledger line's run id
and directory) are neutralised here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gate.records import EarlierVerdict
from gate.report.blocks import marker
from gate.report.neutralize import neutralize
from gate.report.verdict import CHECK, decided

MAX_EVALUATING = 20  # sweeps listed in the evaluating state


@dataclass(frozen=True)
class State:
    word: str  # one word per verdict across the product (gate.report.verdict)
    alert: str  # GitHub alert type
    action: str  # what to do with the PR
    check: str  # what happened to the required check
    why: str  # gate's own explanation; ``{head}`` and ``{sweep}`` are filled in, neutralised


_FAILED = "failed"
_RERUN = "Re-run the `gate` workflow for this PR to get a result."
NO_REPORT: dict[str, State] = {
    # decided by the PR's gate run (reusable-gate.yml), handed over as report.md
    "smoke-failed": State(
        "Smoke failed", "CAUTION", "do not merge", _FAILED,
        "The smoke test failed{head}: a task, fixture, scorer or configuration is broken, so no "
        "sweep ran. The smoke job's log and its `smoke` artifact say which."),
    "changes-failed": State(
        "No result", "WARNING", "not decided", _FAILED,
        "`gate changes` failed{head}, so gate could not tell which sweeps this PR needs (an "
        "invalid gate.yaml or registry?): see the changes job's log."),
    "fork": State(
        "Not evaluated", "WARNING", "do not merge yet", _FAILED,
        "Fork PR{head}: no secrets, so the sweeps this PR needs did not run. A maintainer who "
        "has reviewed the code can push the branch to this repository to have it evaluated."),
    "draft": State(
        "Not evaluated", "WARNING", "do not merge yet", _FAILED,
        "Draft PR{head}: smoke test only. The sweeps run once the PR is marked ready for "
        "review."),
    "no-sweeps": State(
        "No sweep needed", "TIP", "nothing to compare", "passed",
        "No prompt, tool or model change{head} requires a sweep, and the smoke test passed."),
    "no-results": State(
        "No result", "WARNING", "not decided", _FAILED,
        "The sweeps this PR needs produced no results{head} (a sweep or plan job failed or was "
        "skipped): see the workflow run. " + _RERUN),
    "report-failed": State(
        "No result", "WARNING", "not decided", _FAILED,
        "`gate report` failed for sweep {sweep}{head}: see the gate job's log; the run "
        "directory is in the workflow run's cache and artifacts."),
    # decided by gate-comment.yml from the gate run's conclusion (GitHub's words, in the event)
    "no-artifact": State(
        "No result", "WARNING", "not decided", "ended without a report",
        "The gate run{head} ended without a readable `gate-comment` artifact (its upload failed, "
        "or it was refused as malformed): see the workflow run. " + _RERUN),
    "cancelled": State(
        "No result", "WARNING", "not decided", "cancelled",
        "The gate run{head} was cancelled before it reported. A newer run for this PR replaces "
        "this comment with its result; if there is none, re-run the `gate` workflow."),
    "timed_out": State(
        "No result", "WARNING", "not decided", "timed out",
        "The gate run{head} hit a job time limit before it reported. " + _RERUN),
    "startup_failure": State(
        "No result", "WARNING", "not decided", "did not start",
        "The gate workflow failed to start{head} (an invalid workflow file or pin: see the "
        "Actions tab)."),
    "action_required": State(
        "Not evaluated", "WARNING", "do not merge yet", "not run yet",
        "GitHub holds the gate run{head} until a maintainer approves running workflows for "
        "this PR (Actions tab, \"Approve and run\")."),
    "neutral": State(
        "No result", "WARNING", "not decided", "ended without a report",
        "The gate run{head} ended without a report. " + _RERUN),
    "skipped": State(
        "No result", "WARNING", "not decided", "skipped",
        "The gate run{head} was skipped. " + _RERUN),
    "stale": State(
        "No result", "WARNING", "not decided", "stale",
        "GitHub marked the gate run{head} stale. " + _RERUN),
}


def _head(head_sha: str | None) -> str:
    return f" for head {neutralize(head_sha[:7], context='code')}" if head_sha else ""


def _verdict_line(state: State) -> str:
    return (f"> **{state.word}: {state.action}** (required check `{CHECK}` {state.check}).")


def no_report(reason: str, head_sha: str | None = None, sweep: str | None = None,
              run_url: str | None = None) -> str:
    """report.md for a PR (or one of its sweeps) that has no sweep report, for ``reason``
    (a key of ``NO_REPORT``; KeyError otherwise: the callers offer only those)."""
    state = NO_REPORT[reason]
    name = neutralize(sweep, context="code") if sweep else "gate"
    why = state.why.format(head=_head(head_sha), sweep=name)
    lines = [marker("row", f"{state.alert} | {name} | **{state.word}** |  |  |  | "),
             marker("verdict"), f"> [!{state.alert}]", _verdict_line(state), f"> {why}"]
    if run_url:
        lines += ["", f"<sub>[workflow run]({run_url})</sub>"]
    return "\n".join(lines) + "\n"


def evaluating_report(changes: dict[str, Any] | None, head_sha: str | None,
                      run_url: str | None) -> str:
    """The "evaluating" state, posted when the gate run starts and replaced by its result:
    which sweeps run (from ``gate changes`` JSON, when known), on which head."""
    sweeps = changes.get("sweeps") if isinstance(changes, dict) else None
    sweeps = [s for s in sweeps if isinstance(s, dict)] if isinstance(sweeps, list) else []
    head = f" on head {neutralize(head_sha[:7], context='code')}" if head_sha else ""
    what = (f"{len(sweeps)} sweep{'s' if len(sweeps) != 1 else ''}" if sweeps
            else "the smoke test and the sweeps this PR needs")
    state = State("Evaluating", "NOTE", "wait for the result", "pending", "")
    lines = [marker("row", f"NOTE | gate{head} | **Evaluating** |  |  |  | "),
             marker("verdict"), "> [!NOTE]", _verdict_line(state),
             f"> gate is running {what}{head}; this comment is replaced by the result when the "
             "run ends."]
    for s in sweeps[:MAX_EVALUATING]:
        base = s.get("baseline")
        against = f" against {neutralize(base, context='code')}" if base else ""
        lines.append(f"- {neutralize(s.get('candidate') or '?', context='code')}{against}")
    if len(sweeps) > MAX_EVALUATING:
        lines.append(f"- … {len(sweeps) - MAX_EVALUATING} more")
    if run_url:
        lines += ["", f"<sub>[workflow run]({run_url})</sub>"]
    return "\n".join(lines) + "\n"


def earlier_run_report(earlier: EarlierVerdict, sweep: str | None = None,
                       earlier_report: str | None = None) -> str:
    """report.md of a sweep or merge the comparison ledger refused (gate.engine.ledger): an
    earlier run decided the same comparison and its verdict stands. The word, alert and
    check are that verdict's (gate.report.verdict), as the exit code is that run's.
    ``earlier_report``: the path of the earlier run's own report.md, when it is on disk here.
    Every value comes from the ledger line and the refused run's arms (earlier-run.json)."""
    v = decided(earlier.verdict, earlier.slos_met)
    arms = {a.name: a for a in earlier.arms}
    cand, base = arms.get("candidate"), arms.get("baseline")
    name = (f"{_code(cand.model)} vs {_code(base.model)}" if cand and base
            else _code(sweep) if sweep else "gate")
    run = _code(earlier.run_id)
    what = {"Pass": "no regression found, every SLO met",  # decided(): Pass needs slos_met
            "SLO breach": "no regression found, but an SLO of the candidate not met",
            "Regression": "the candidate found worse"}[v.word]
    runs = f"{earlier.runs} run{'s' if earlier.runs != 1 else ''}"
    lines = [marker("row", f"{v.alert} | {name} (decided by run {run}) | **{v.word}** |  |  |"
                           "  | "),
             marker("verdict"), f"> [!{v.alert}]", f"> **{v.word}: {v.action}** ({v.check}).",
             f"> This comparison (the same candidate, baseline, configuration and file hashes) "
             f"was decided by an earlier run, {run} in {_code(earlier.out)}: **{v.word}** "
             f"({what}). That verdict stands and nothing was run again; the comparison "
             f"ledger holds {runs} of this comparison. To run it again, add the "
             "`gate:restart` label to the PR (`--force-restart` on the command line): the "
             "restart is recorded and its report says which run of the comparison it is, each "
             "run being another chance for an error (docs/statistics.md, \"One ledger per "
             "comparison\")."]
    if earlier_report:
        lines += ["", f"The earlier run's full report: {_code(earlier_report)}."]
    return "\n".join(lines) + "\n"


def _code(text: str) -> str:
    return neutralize(text, context="code")
