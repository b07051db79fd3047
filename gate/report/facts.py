"""The sentences and figures of the report's verdict block, context line and tables, each
computed from the run directory's records (no figure without an artifact).

Every function returns gate's own text as ``Markup`` with untrusted parts (model and task ids,
SLO names, change descriptions) neutralised, so the template keeps it as it is.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from gate.records import ArmSummary, Manifest, Results, Trial
from gate.report.excerpts import SAFE_URL, first_wrong_step
from gate.report.neutralize import neutral, neutralize
from gate.report.verdict import Verdict, decision_words
from gate.rundir import RunDir

CONTINUE_LABEL = "gate:continue"
MAX_CHANGE_CHARS = 160
MAX_WHY_REASONS = 5  # failure reasons named in the verdict block (all are in the tables)


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def pct_short(x: float | None) -> str:
    """25%, 62.5%: a rate as a reader says it."""
    return "n/a" if x is None else f"{100 * x:.1f}".removesuffix(".0") + "%"


def usd(x: float | None) -> str:
    return "n/a" if x is None else f"${x:.4f}" if x >= 0.01 else f"${x:.6f}"


def usd_short(x: float) -> str:
    return f"${x:.2f}" if x >= 1 else f"${x:.3f}"


def num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def sci(x: float) -> str:
    return f"{x:.3g}"


def pp(x: float | None) -> str:
    """A difference of two rates in percentage points, with a true minus sign."""
    return "n/a" if x is None else f"{100 * x:+.0f} pp".replace("-", "\u2212")


def trusted(fmt: Callable[..., str]) -> Callable[..., Markup]:
    """A number formatter's output is gate's own text: mark it so the template keeps it."""
    return lambda *args: Markup(fmt(*args))


def _task_difference(row: dict[str, Any], arms: list[str]) -> float | None:
    """Candidate minus baseline success rate on one task (None without trials on both)."""
    if "candidate" not in arms or "baseline" not in arms:
        return None
    figures = row.get("arms", row)  # TaskRow.arms in typed records, flat before
    c, b = figures.get("candidate") or {}, figures.get("baseline") or {}
    if not c.get("trials") or not b.get("trials"):
        return None
    return float(c["successes"]) / float(c["trials"]) - float(b["successes"]) / float(b["trials"])


def tasks_worst_first(results: dict[str, Any], manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-task rows with their difference, the candidate's worst tasks first."""
    arms = list(manifest["scope"]["arms"])
    rows = []
    for row in results["tasks"]:
        figures = row.get("arms", row)
        rows.append({"task": row["task"], "difference": _task_difference(row, arms),
                     "pairs": int(row.get("pairs") or 0),
                     **{arm: figures[arm] for arm in arms if arm in figures}})
    return sorted(rows, key=lambda r: (r["difference"] is None, r["difference"] or 0.0,
                                       r["task"]))


def worse_better(results: Results) -> tuple[int, int]:
    """Tasks where the candidate's success rate is below / above the baseline's."""
    rows = [_task_difference(r.to_json(), list(r.arms)) for r in results.tasks]
    return sum(1 for d in rows if d is not None and d < 0), sum(
        1 for d in rows if d is not None and d > 0)


REASON_LABELS = {
    "wrong_fix": "wrong fix", "policy_violation": "policy violation",
    "step_limit": "step limit", "truncation": "truncated at max_tokens", "refusal": "refusal",
    "distractor_action": "distractor action", "wrong_end_state": "wrong end state",
    "agent_exit": "agent exit", "agent_timeout": "agent timeout",
}


def reasons(counts: dict[str, int]) -> Markup:
    """Failure reasons with the failed trials showing each, most common first."""
    parts = []
    for key, n in sorted(counts.items(), key=lambda kv: -int(kv[1])):
        kind = key.partition(":")[2] if key.startswith("invalid_action:") else None
        label = f"invalid action ({kind})" if kind else REASON_LABELS.get(key, key)
        parts.append(f"{neutralize(label, limit=60)} {int(n)}")
    return Markup(", ".join(parts) or "n/a")


def _arm_words(a: ArmSummary) -> str:
    return f"**{pct_short(a.success_rate)}** ({a.successes}/{a.trials})"


def _arm_name(a: ArmSummary, other: ArmSummary | None) -> str:
    """The arm's model, with its prompts/tools when both arms run the same model."""
    name = str(neutral(a.model, context="code"))
    if other is not None and other.model == a.model and other.prompts_tools != a.prompts_tools:
        name += " with prompts/tools " + str(neutral(a.prompts_tools, context="code"))
    return name


def comparison(results: Results, manifest: Manifest) -> Markup:
    """Candidate against baseline with the difference in pp and tasks worse/better."""
    cand, base = results.arms.get("candidate"), results.arms.get("baseline")
    if cand is None or base is None:
        arm = next(iter(results.arms.values()), None)
        if arm is None:
            return Markup("No trial was scored.")
        return Markup(f"{_arm_name(arm, None)} succeeds in {_arm_words(arm)} of its trials, "
                      f"over {len(manifest.scope.tasks)} tasks.")
    if cand.success_rate is None or base.success_rate is None:
        return Markup("No scored pair of trials yet: no difference to show.")
    worse, better = worse_better(results)
    diff = pp(cand.success_rate - base.success_rate)
    return Markup(f"{_arm_name(cand, base)} succeeds in {_arm_words(cand)} of its trials, "
                  f"{_arm_name(base, cand)} in {_arm_words(base)}: **{diff}**, "
                  f"{worse} task{'s' if worse != 1 else ''} worse, {better} better.")


def decision(results: Results, manifest: Manifest) -> Markup:
    return Markup(decision_words(results, manifest))


def subset_words(results: Results) -> Markup | None:
    """A run over part of the suite says so in its verdict block (never read as the whole)."""
    subset = results.subset
    if subset is None:
        return None
    flags = ", ".join([f"--task {p}" for p in subset.task_patterns]
                      + [f"--env {e}" for e in subset.environments])
    return Markup(f"This run covered part of the suite only (subset: {len(subset.tasks)} of "
                  f"{subset.suite_tasks} tasks; {neutralize(flags, limit=200)}): not a result "
                  "on the whole suite.")


def why(results: Results) -> Markup | None:
    """What the candidate's failed trials on the tasks it did worse on showed, and losses."""
    parts = []
    regressed = results.regressed_tasks or []
    if regressed:
        counts: Counter[str] = Counter()
        for r in regressed:
            counts.update(r.reasons)
        counts = Counter(dict(counts.most_common(MAX_WHY_REASONS)))
        parts.append(f"on the {len(regressed)} task{'s' if len(regressed) != 1 else ''} "
                     f"worse, the candidate's failed trials show {reasons(dict(counts))}.")
    lost = sum(a.trials_lost_to_provider for a in results.arms.values())
    errors = sum(a.provider_errors.total for a in results.arms.values())
    if errors:
        parts.append(f"{errors} provider error(s), {lost} trial(s) lost to them, kept out of "
                     "every rate.")
    broken = sum(a.environment_errors.total for a in results.arms.values())
    if broken:
        parts.append(f"{broken} trial(s) lost to environment errors (the harness's fault), "
                     "excluded.")
    return Markup(" ".join(parts)) if parts else None


def _is_rate(slo: str) -> bool:
    return slo in ("success_rate", "provider_error_share") or slo.startswith("pass^")


def slo_value(results: Results, slo: str, value: float | None) -> str:
    """An SLO's value as a reader reads it: rates in percent, the success rate with its
    fraction."""
    if value is None:
        return "not measured"
    if not _is_rate(slo):
        return num(value)
    cand = results.arms.get("candidate") or next(iter(results.arms.values()), None)
    if slo == "success_rate" and cand is not None:
        return f"{pct_short(value)} ({cand.successes}/{cand.trials})"
    return pct_short(value)


def slo_rows(results: Results) -> list[dict[str, Any]]:
    slos = results.slos
    return [{"slo": c.slo, "value": Markup(slo_value(results, c.slo, c.value)),
             "limit": Markup(f"{'min' if c.direction == '>=' else 'max'} "
                             f"{pct_short(c.limit) if _is_rate(c.slo) else num(c.limit)}"),
             "ok": c.ok, "status": c.status, "bounds": _slo_bounds(c.slo, c.bounds)}
            for c in (slos.checks if slos else [])]


def _slo_bounds(slo: str, bounds: tuple[float, float] | None) -> Markup:
    """The anytime bounds an SLO was judged with (for p95 latency: on the share within)."""
    if bounds is None:
        return Markup("n/a")
    lo, hi = bounds
    if slo == "p95_latency_s":
        return Markup(f"{pct_short(lo)} to {pct_short(hi)} within")
    if _is_rate(slo) or slo.startswith("pass^"):
        return Markup(f"{pct_short(lo)} to {pct_short(hi)}")
    return Markup(f"{num(lo)} to {num(hi)}")


def slo_breaches(results: Results) -> Markup | None:
    slos = results.slos
    if slos is None or slos.met:
        return None
    words = []
    for row in slo_rows(results):
        if not row["ok"]:
            name = neutralize(row["slo"].replace("_", " "), limit=60)
            words.append(f"{name} {row['value']} ({row['limit']})")
    return Markup("; ".join(words))


def next_steps(results: Results, manifest: Manifest) -> Markup | None:
    """What to do next (gate's own text, no run data)."""
    if results.kind != "sweep":
        return None
    if results.status in ("halted", "paused"):
        return Markup("once the cause is fixed, `gate sweep --resume --out DIR` with the same "
                      "configuration goes on (the trials already paid are kept).")
    if results.verdict == "regression" or (results.slos and not results.slos.met):
        return Markup("read the failing trials below or the full report, fix the candidate "
                      "and push: gate runs again on the new head.")
    if results.verdict != "inconclusive":
        return None
    rounds = manifest.scope.max_rounds
    return Markup(
        "to continue this sweep (the trials already paid are kept, the error guarantees "
        f"hold): add the label `{CONTINUE_LABEL}` to the pull request, or run the workflow "
        "with `continue: true`, or locally `gate sweep --resume --out DIR --max-rounds N` "
        f"with N above the {rounds} round(s) planned.")


def summary_url() -> str | None:
    server, repo, run = (os.environ.get(k) for k in
                         ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def run_links(run_url: str | None, traces: list[dict[str, str]]) -> dict[str, str]:
    """Links as words: the workflow run, its artifacts, a failed trial's trace."""
    links = {}
    if run_url and SAFE_URL.fullmatch(run_url):
        links = {"workflow run": run_url, "artifacts": run_url + "#artifacts"}
    if traces and traces[0]["url"]:
        links["a failed trial's trace"] = traces[0]["url"]
    return links


def _finished(run_dir: Path, manifest: Manifest) -> str:
    """When the last trial finished (trials.jsonl), else when the run started."""
    last = manifest.created
    run = RunDir(run_dir)
    if run.trials_path.exists():
        stamps = [t.ts for t in run.trials()]
        last = max(stamps, default=last)
    try:
        when = datetime.fromisoformat(last.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return f"finished {when:%Y-%m-%d %H:%M} UTC"


def _unescape(text: str) -> str:
    """A ``gate changes`` reason (markdown-neutralised there) back to plain text."""
    return html.unescape(re.sub(r"\\([\\`*_\[\]|~$])", r"\1", text))


def change_words(changes: Path | None, manifest: Manifest) -> str | None:
    """What the PR changed, from ``gate changes`` JSON: the reason of this sweep's entry."""
    if changes is None or not changes.exists():
        return None
    try:
        data = json.loads(changes.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    models = {a.name: a.model for a in manifest.arms}
    sweeps = data.get("sweeps") if isinstance(data, dict) else None
    for s in sweeps if isinstance(sweeps, list) else []:
        if isinstance(s, dict) and s.get("candidate") == models.get("candidate") and (
                s.get("baseline") in (None, models.get("baseline"))):
            reason = _unescape(str(s.get("reason") or ""))
            return "this PR: " + neutralize(reason, limit=MAX_CHANGE_CHARS) if reason else None
    return None


def context(run_dir: Path, manifest: Manifest, results: Results, links: dict[str, str],
            changes: Path | None) -> Markup:
    """One line: head, what the PR changed, trials and cost against the budget, links."""
    parts = []
    if manifest.git_sha:
        parts.append("head " + str(neutral(manifest.git_sha[:7], context="code")))
    change = change_words(changes, manifest)
    if change:
        parts.append(change)
    trials = sum(a.trials + a.trials_lost_to_provider for a in results.arms.values())
    spent = sum(a.cost_usd for a in results.arms.values())
    parts.append(f"{trials} trials")
    parts.append(f"{usd_short(spent)} of {usd_short(manifest.budget.ceiling_usd)} budget")
    parts.extend(f"[{word}]({url})" for word, url in links.items())
    finished = _finished(run_dir, manifest)
    if finished:
        parts.append(finished)
    return Markup(" · ".join(parts))


def summary_row(verdict: Verdict, results: Results, manifest: Manifest) -> Markup:
    """The report's row in a multi-sweep comment's summary table (gate.report.blocks)."""
    cand, base = results.arms.get("candidate"), results.arms.get("baseline")
    if cand is None or base is None:
        name = ", ".join(str(neutral(a.model, context="code")) for a in results.arms.values())
        cells = [name or "run", f"**{verdict.word}**", "", "", "", ""]
    else:
        worse, better = worse_better(results)
        diff = (pp(cand.success_rate - base.success_rate)
                if cand.success_rate is not None and base.success_rate is not None else "n/a")
        cells = [f"{_arm_name(cand, base)} vs {_arm_name(base, cand)}", f"**{verdict.word}**",
                 f"{pct_short(cand.success_rate)} ({cand.successes}/{cand.trials})",
                 f"{pct_short(base.success_rate)} ({base.successes}/{base.trials})",
                 diff, f"{worse} / {better}"]
    if results.subset is not None:
        cells[0] += f" (subset: {len(results.subset.tasks)} of {results.subset.suite_tasks} tasks)"
    return Markup(" | ".join([verdict.alert, *cells]))


def first_step(trials: dict[str, Trial], row: dict[str, Any]) -> Markup:
    return first_wrong_step(trials.get(row.get("example_trial") or ""))


def pass_k_words(results: Results) -> dict[str, Markup]:
    """Per arm: each pass^k with the number of tasks it is over (tasks with >= k trials)."""
    out = {}
    for name, a in results.arms.items():
        trials = [r.arms[name].trials for r in results.tasks if name in r.arms]
        parts = []
        for k, value in a.pass_k.items():
            over = sum(1 for n in trials if n >= int(k))
            shown = "not measured" if value is None else num(value)
            parts.append(f"pass^{int(k)} {shown} over {over} task{'s' if over != 1 else ''}")
        out[name] = Markup(", ".join(parts) or "pass^k n/a (no scored trial)")
    return out
