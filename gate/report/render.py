"""Markdown report of a run directory (jinja2), and the console summary of a decision.

report.md is the full report, in blocks (gate.report.blocks): the verdict block first (a
GitHub alert with the verdict, its consequence for the merge, candidate against baseline with
the difference in percentage points, the decision with its error bound), a context line, the
top regressed tasks each with its first wrong step, then folded sections. The PR comment is
planned from these blocks (gate.report.plan) within GitHub's 65,536 characters; the job
summary and the run's artifact hold the whole report.

Every ``{{ ... }}`` in the templates goes through ``_finalize``: a string is neutralised as
inline markdown (gate.report.neutralize) unless it is ``Markup``, which only this package's
formatters and the ``code`` filter produce. So text from a provider, a model or a PR's files
(halt reasons, model and task ids, SLO names) cannot ping, link or inject HTML, however the
template is edited.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any, TextIO

import jinja2
from markupsafe import Markup

from gate.errors import ConfigError
from gate.records import Manifest, Results
from gate.report import facts
from gate.report.blocks import marker
from gate.report.excerpts import MAX_EXCERPTS, excerpts, failed_traces, failed_trials
from gate.report.neutralize import neutral, neutralize
from gate.report.summary import value_text
from gate.report.verdict import verdict_of
from gate.rundir import PARTIAL, RESULTS, RunDir, read_results

COMMENT_LIMIT = 65_536
TOP_TASKS = 5  # regressed tasks in the table under the verdict
MAX_TASK_ROWS = 5_000  # per-task rows in report.md (all of them are in results.json)


def _finalize(value: Any) -> Any:
    """Applied to every template expression: only ``Markup`` and numbers pass unchanged."""
    if isinstance(value, Markup) or value is None:
        return value
    if isinstance(value, bool | int | float):
        return value
    return neutralize(value, context="markdown")


def _code(value: Any) -> Markup:
    return neutral(value, context="code")


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("gate.report", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    finalize=_finalize,
)
_ENV.filters["code"] = _code

_SUMMARY_ENTITIES = {c: f"&#{ord(c)};" for c in "\\`*_[]|~$#!"}


def _summary(value: Any) -> Markup:
    """Untrusted text inside ``<summary>`` (HTML, where a markdown backslash would show):
    neutralised as plain text, then HTML-escaped, markdown punctuation as character
    references (shown as the character, never read as markdown)."""
    text = html.escape(neutralize(value, context="plain", limit=120), quote=True)
    return Markup("".join(_SUMMARY_ENTITIES.get(c, c) for c in text))


_ENV.filters["summary"] = _summary


def load_run(run_dir: Path) -> tuple[Manifest, Results]:
    run = RunDir(run_dir)
    if not run.has_manifest():
        raise ConfigError.one(str(run.manifest_path), None,
                              f"not a run directory (no {run.manifest_path.name})")
    stored = run.stored_results_path()
    if stored is None:
        raise ConfigError.one(str(run_dir), None,
                              f"no {RESULTS} or {PARTIAL} in the run directory")
    return run.manifest(), read_results(stored)


def headline(results: Results) -> str:
    """The console's first line: the same word as the report's verdict block."""
    text = f"gate: {verdict_of(results).word}"
    if results.subset is not None:  # never read as a result on the whole suite
        text += f" (subset: {len(results.subset.tasks)} of {results.subset.suite_tasks} tasks)"
    return text


def _stages(run_dir: Path) -> Any:
    """stages.json of a merged sharded sweep (gate merge), or None."""
    stages = RunDir(run_dir).stages()
    return None if stages is None else stages.to_json()


def _markers(row: Markup) -> dict[str, Markup]:
    return {"row": Markup(marker("row", row)), "verdict": Markup(marker("verdict")),
            "top": Markup(marker("top")), "fold": Markup(marker("fold"))}


def render_markdown(run_dir: Path, changes: Path | None = None) -> str:
    """The full report of ``run_dir``. ``changes``: a ``gate changes`` JSON file, for the
    sentence saying what the PR changed."""
    manifest_record, results_record = load_run(run_dir)
    manifest, results = manifest_record.to_json(), results_record.to_json()
    rows = facts.tasks_worst_first(results, manifest)
    task_rows = [r for r in rows if r["pairs"] or any(
        (r.get(a) or {}).get("trials") for a in manifest["scope"]["arms"])]
    regressed = list(results.get("regressed_tasks") or [])
    trials = failed_trials(run_dir, {r["example_trial"] for r in regressed
                                     if r.get("example_trial")})
    top = [{**r, "step": facts.first_step(trials, r)} for r in regressed[:TOP_TASKS]]
    traces = failed_traces(run_dir)
    links = facts.run_links(facts.summary_url(), traces)
    shown = [r["example_trial"] for r in regressed[:MAX_EXCERPTS] if r.get("example_trial")]
    spent = sum(a.cost_usd for a in results_record.arms.values())
    verdict = verdict_of(results_record)
    comparison = facts.comparison(results_record, manifest_record)
    text = _ENV.get_template("report.md.j2").render(
        results=results, manifest=manifest, v=verdict, comparison=comparison,
        decision=facts.decision(results_record, manifest_record),
        subset=facts.subset_words(results_record),
        why=facts.why(results_record), slo_breaches=facts.slo_breaches(results_record),
        next_steps=facts.next_steps(results_record, manifest_record),
        context=facts.context(run_dir, manifest_record, results_record, links, changes),
        markers=_markers(facts.summary_row(verdict, results_record, manifest_record)),
        top=top, more=regressed[TOP_TASKS:], regressed=regressed,
        excerpts=excerpts(run_dir, trials, shown),
        task_rows=task_rows[:MAX_TASK_ROWS], rows_hidden=max(0, len(task_rows) - MAX_TASK_ROWS),
        tasks_empty=len(rows) - len(task_rows), sweep=results_record.kind == "sweep",
        reasons=facts.reasons, stages=_stages(run_dir), traces=traces,
        passk=facts.pass_k_words(results_record), spent=spent,
        trials_total=sum(a.trials + a.trials_lost_to_provider
                         for a in results_record.arms.values()),
        pct=facts.trusted(facts.pct), usd=facts.trusted(facts.usd),
        num=facts.trusted(facts.num), usd_short=facts.trusted(facts.usd_short),
        slo_rows=facts.slo_rows(results_record), sci=facts.trusted(facts.sci),
        pp=facts.trusted(facts.pp), ledger_note=_comparison_text(manifest_record),
    )
    return text


def _comparison_text(manifest: Manifest) -> Markup | None:
    """"**3rd run of this comparison** (...)" when the ledger held earlier runs."""
    from gate.engine.ledger import ordinal

    c = manifest.comparison
    if c is None or c.number == 1:
        return None
    earlier = ", ".join(_code(r) for r in c.previous)
    return Markup(f"**{ordinal(c.number)} run of this comparison** (restarted with "
                  f"--force-restart; earlier: {earlier}): each restart is another chance for "
                  "an error (docs/statistics.md).")


def write_report(run_dir: Path, changes: Path | None = None) -> Path:
    """Render the run's report and write it to ``run_dir/report.md``."""
    return RunDir(run_dir).write_report(render_markdown(run_dir, changes))


def print_decision(results: Results, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    d = results.decision
    print(headline(results), file=out)
    if d:
        print(f"decision: {d.verdict} after {d.pairs} paired trials "
              f"({d.rounds} check(s)); e_reject {d.e_reject:.3g} "
              f"(threshold {d.threshold_reject:.3g}), "
              f"e_accept {d.e_accept:.3g} (threshold {d.threshold_accept:.3g}); the "
              f"fixed-sample design needs {d.fixed_sample_pairs} pairs "
              f"({d.fixed_sample_rounds} rounds)", file=out)
    acc = results.accounting
    if acc and acc.after_decision_trials:
        print(f"after the decision: {acc.after_decision_trials} trial(s), "
              f"${acc.after_decision_cost_usd:.6f}: {acc.after_decision_why}", file=out)
    slos = results.slos
    if slos:
        for c in slos.checks:
            verdict = {"breached": "BREACH", "unmeasured": "unmeasured"}.get(c.status, "ok")
            print(f"  SLO {c.slo}: {value_text(c.value)} {c.direction} {c.limit} -> {verdict}",
                  file=out)

