"""Markdown report of a run directory (jinja2), and the console summary of a decision.

The report stays under GitHub's 65,536-character comment limit whatever the suite size:
per-task rows are dropped from the end, with a pointer to the job summary, until it fits.

Every ``{{ ... }}`` in the template goes through ``_finalize``: a string is neutralised as
inline markdown (gate.report.neutralize) unless it is ``Markup``, which only this module's
number formatters and the ``code`` filter produce. So text from a provider, a model or a PR's
files (halt reasons, model and task ids, SLO names) cannot ping, link or inject HTML, however
the template is edited.
"""

from __future__ import annotations

import html
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import jinja2
from markupsafe import Markup

from gate.engine.rundir import PARTIAL, RESULTS, read_manifest, read_results
from gate.errors import ConfigError
from gate.records import Manifest, Results, Trial
from gate.report.neutralize import neutral, neutralize
from gate.report.summary import value_text

COMMENT_LIMIT = 65_536


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
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        raise ConfigError.one(str(manifest_path), None, "not a run directory (no manifest.json)")
    for name in (RESULTS, PARTIAL):
        if (run_dir / name).exists():
            return read_manifest(run_dir), read_results(run_dir / name)
    raise ConfigError.one(str(run_dir), None, f"no {RESULTS} or {PARTIAL} in the run directory")


def headline(results: Results) -> str:
    text = _headline(results)
    if results.subset is not None:  # never read as a result on the whole suite
        text += f" (subset: {len(results.subset.tasks)} of {results.subset.suite_tasks} tasks)"
    return text


def _headline(results: Results) -> str:
    status, verdict = results.status, results.verdict
    if status in ("halted", "paused"):
        return f"gate: HALTED ({status})"
    if results.kind != "sweep":
        return f"gate run: {status}"
    if verdict == "pass":
        return "gate: no regression" if results.slos and results.slos.met else "gate: SLO breach"
    if verdict == "regression":
        return "gate: REGRESSION"
    return "gate: inconclusive"


def _summary_line(results: Results, manifest: Manifest) -> Markup:
    arms = ", ".join(f"{neutralize(a.name)} {_code(a.model)}" for a in manifest.arms)
    slos = results.slos
    breaches = ", ".join(neutralize(b) for b in (slos.breaches if slos else []))
    breach = f"; SLO breaches: {breaches}" if breaches else ""
    status, verdict = (neutralize(str(v)) for v in (results.status, results.verdict))
    subset = (f" This run covered {neutralize(results.subset.describe())}, not the whole "
              "suite." if results.subset is not None else "")
    return Markup(f"Status **{status}**, verdict **{verdict}** ({arms}){breach}.{subset}"
                  + _comparison_text(manifest))


def _comparison_text(manifest: Manifest) -> str:
    """" **3rd run of this comparison** (...)" when the ledger held earlier runs."""
    from gate.engine.ledger import ordinal

    c = manifest.comparison
    if c is None or c.number == 1:
        return ""
    earlier = ", ".join(_code(r) for r in c.previous)
    return (f" **{ordinal(c.number)} run of this comparison** (restarted with "
            f"--force-restart; earlier: {earlier}): each restart is another chance for an "
            "error (docs/statistics.md).")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _usd(x: float | None) -> str:
    return "n/a" if x is None else f"${x:.4f}" if x >= 0.01 else f"${x:.6f}"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _sci(x: float) -> str:
    return f"{x:.3g}"


def _passk(pk: dict[str, float | None]) -> str:
    return ", ".join(f"k={k}: {_num(v)}" for k, v in pk.items()) or "n/a"


def _chart_label(name: str) -> str:
    """An arm name inside the mermaid fence: plain, and no quote or backtick to break out."""
    return neutralize(name, context="plain", limit=40).replace('"', "'").replace("`", "'")


def _chart(results: Results) -> Markup:
    names = list(results.arms)
    rates = [results.arms[n].success_rate for n in names]
    if any(r is None for r in rates):
        return Markup("")
    bars = ", ".join(f"{100 * float(r):.1f}" for r in rates if r is not None)
    labels = ", ".join(f'"{_chart_label(n)}"' for n in names)
    return Markup("xychart-beta\n    title \"Success rate (%)\"\n"
                  f"    x-axis [{labels}]\n    y-axis \"success %\" 0 --> 100\n    bar [{bars}]")


def _trusted(fmt: Callable[..., str]) -> Callable[..., Markup]:
    """A number formatter's output is gate's own text: mark it so ``_finalize`` keeps it."""
    return lambda *args: Markup(fmt(*args))


def _stages(run_dir: Path) -> Any:
    """stages.json of a merged sharded sweep (gate merge), or None."""
    path = run_dir / "stages.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def render_markdown(run_dir: Path, limit: int = COMMENT_LIMIT) -> str:
    manifest_record, results_record = load_run(run_dir)
    manifest, results = manifest_record.to_json(), results_record.to_json()
    rows = _tasks_worst_first(results, manifest)
    regressed = list(results.get("regressed_tasks") or [])
    url = _summary_url()  # from the runner's environment, not from the run
    links = _run_links(url)
    url = Markup(url) if url else None
    excerpts = _excerpts(run_dir, regressed[:MAX_EXCERPTS])
    shown_rows, shown_regressed = len(rows), len(regressed)
    while True:
        text = _ENV.get_template("report.md.j2").render(
            results=results, manifest=manifest, headline=headline(results_record),
            summary_line=_summary_line(results_record, manifest_record),
            task_rows=rows[:shown_rows], truncated=len(rows) - shown_rows, summary_url=url,
            chart=_chart(results_record),
            regressed=regressed[:shown_regressed],
            regressed_hidden=len(regressed) - shown_regressed, excerpts=excerpts,
            reasons=_reasons, links=links,
            next_steps=_next_steps(results_record, manifest_record),
            stages=_stages(run_dir),
            pct=_trusted(_pct), usd=_trusted(_usd), num=_trusted(_num), sci=_trusted(_sci),
            passk=_trusted(_passk), pp=_trusted(_pp),
            spent=sum(a.cost_usd for a in results_record.arms.values()),
            traces=_failed_traces(run_dir),
        )
        if len(text) < limit or (shown_rows == 0 and shown_regressed == 0):
            return text
        # Drop the folded all-tasks rows first, then regressed rows (and their excerpts).
        if shown_rows:
            shown_rows = max(0, shown_rows - max(1, shown_rows // 4))
        else:
            shown_regressed = max(0, shown_regressed - max(1, shown_regressed // 4))
            excerpts = {k: v for k, v in excerpts.items()
                        if k in {r["example_trial"] for r in regressed[:shown_regressed]}}


def _pp(x: float | None) -> str:
    """A difference of two rates in percentage points, with a true minus sign."""
    return "n/a" if x is None else f"{100 * x:+.0f} pp".replace("-", "\u2212")


def _task_difference(row: dict[str, Any], arms: list[str]) -> float | None:
    """Candidate minus baseline success rate on one task (None without trials on both)."""
    if "candidate" not in arms or "baseline" not in arms:
        return None
    figures = row.get("arms", row)  # TaskRow.arms in typed records, flat before
    c, b = figures.get("candidate") or {}, figures.get("baseline") or {}
    if not c.get("trials") or not b.get("trials"):
        return None
    return float(c["successes"]) / float(c["trials"]) - float(b["successes"]) / float(b["trials"])


def _tasks_worst_first(results: dict[str, Any], manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-task rows with their difference, the candidate's worst tasks first."""
    arms = list(manifest["scope"]["arms"])
    rows = []
    for row in results["tasks"]:
        figures = row.get("arms", row)
        rows.append({"task": row["task"], "difference": _task_difference(row, arms),
                     **{arm: figures[arm] for arm in arms if arm in figures}})
    return sorted(rows, key=lambda r: (r["difference"] is None, r["difference"] or 0.0,
                                       r["task"]))


REASON_LABELS = {
    "wrong_fix": "wrong fix", "policy_violation": "policy violation",
    "step_limit": "step limit", "truncation": "truncated at max_tokens", "refusal": "refusal",
    "distractor_action": "distractor action", "wrong_end_state": "wrong end state",
}


def _reasons(counts: dict[str, int]) -> Markup:
    """Failure reasons with the failed trials showing each, most common first."""
    parts = []
    for key, n in counts.items():
        kind = key.partition(":")[2] if key.startswith("invalid_action:") else None
        label = f"invalid action ({kind})" if kind else REASON_LABELS.get(key, key)
        parts.append(f"{neutralize(label, limit=60)} {int(n)}")
    return Markup(", ".join(parts) or "n/a")


MAX_EXCERPTS = 10  # regressed tasks with a trace excerpt
MAX_CALLS = 8  # calls shown per excerpt
ARGS_CHARS = 80


def _excerpts(run_dir: Path, regressed: list[dict[str, Any]]) -> dict[str, Markup]:
    """The calls of one failed candidate trial per regressed task, from trials.jsonl: tool
    names and arguments are the model's (untrusted), so each is a neutralised code span."""
    from gate.engine.jsonl import read_jsonl

    wanted = {r["example_trial"] for r in regressed if r.get("example_trial")}
    if not wanted:
        return {}
    out: dict[str, Markup] = {}
    for t in read_jsonl(run_dir / "trials.jsonl", Trial):
        if t.trial_id in wanted and t.trial_id not in out:
            out[t.trial_id] = _excerpt(t)
    return out


def _excerpt(trial: Trial) -> Markup:
    calls = list(trial.calls or [])
    lines = [_call_line(c) for c in calls[:MAX_CALLS]]
    if len(calls) > MAX_CALLS:
        lines.append(f"- … {len(calls) - MAX_CALLS} more call(s)")
    if not calls:
        lines.append("- no tool call")
    ended = neutralize(trial.ended or "unknown", limit=40)
    lines.append(f"- ended: {ended} after {int(trial.steps or 0)} step(s)")
    return Markup("\n".join(lines))


def _call_line(call: dict[str, Any]) -> str:
    import json

    tool = neutralize(call.get("tool") or "?", context="code", limit=40)
    args = call.get("args")
    shown = "" if args is None else " " + neutralize(
        json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        context="code", limit=ARGS_CHARS)
    flags = []
    if call.get("invalid"):
        flags.append("invalid: " + neutralize(call["invalid"], limit=30))
    if call.get("wrong_fix"):
        flags.append("wrong fix")
    if call.get("distractor"):
        flags.append("distractor")
    if call.get("policy_violation"):
        flags.append("policy violation: " + neutralize(call["policy_violation"], limit=60))
    note = f" — {'; '.join(flags)}" if flags else ""
    step = int(call.get("step") or 0)
    return f"- step {step}: {tool}{shown}{note}"


def _run_links(run_url: str | None) -> dict[str, Markup] | None:
    """The workflow run and its artifacts (the run page's artifacts section), when in Actions."""
    if not run_url or not _SAFE_URL.fullmatch(run_url):
        return None
    return {"run": Markup(run_url), "artifacts": Markup(run_url + "#artifacts")}


CONTINUE_LABEL = "gate:continue"


def _next_steps(results: Results, manifest: Manifest) -> Markup | None:
    """How to continue an undecided or stopped sweep (gate's own text, no run data)."""
    if results.kind != "sweep":
        return None
    if results.status in ("halted", "paused"):
        return Markup("**To go on** once the cause is fixed (the trials already paid are "
                      "kept): `gate sweep --resume --out DIR` with the same configuration.")
    if results.verdict != "inconclusive":
        return None
    rounds = manifest.scope.max_rounds
    return Markup(
        "**To continue this sweep** (the trials already paid are kept, the error guarantees "
        f"hold): add the label `{CONTINUE_LABEL}` to the pull request, or run the workflow "
        "with `continue: true`, or locally `gate sweep --resume --out DIR --max-rounds N` "
        f"with N above the {rounds} round(s) planned.")


_SAFE_URL = re.compile(r"https?://[^\s()<>\[\]`\"'|@]+")
TRACE_URL_VAR = "GATE_TRACE_URL"  # e.g. https://langfuse.example/project/p/traces/{trace_id}
MAX_TRACE_LINKS = 10


def _failed_traces(run_dir: Path) -> list[dict[str, str]]:
    """The OpenTelemetry trace ids of the first failed trials (from trials.jsonl), with a link
    when ``GATE_TRACE_URL`` gives the backend's address pattern."""
    from gate.engine.jsonl import read_jsonl

    template = os.environ.get(TRACE_URL_VAR, "")
    out: list[dict[str, str]] = []
    for t in read_jsonl(run_dir / "trials.jsonl", Trial):
        if t.status != "scored" or t.success or not t.trace_id:
            continue
        trace_id = t.trace_id
        if not all(c in "0123456789abcdef" for c in trace_id):
            continue
        url = template.replace("{trace_id}", trace_id) if "{trace_id}" in template else ""
        # The address comes from the runner's environment, not from the run: it is a link
        # (Markup) when it is a plain http(s) URL, else no link at all.
        link = Markup(url) if _SAFE_URL.fullmatch(url) else ""
        out.append({"trial": t.trial_id, "trace_id": trace_id, "url": link})
        if len(out) == MAX_TRACE_LINKS:
            break
    return out


def _summary_url() -> str | None:
    server, repo, run = (os.environ.get(k) for k in
                         ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def write_report(run_dir: Path) -> Path:
    """Render the run's report and write it to ``run_dir/report.md``."""
    path = run_dir / "report.md"
    path.write_text(render_markdown(run_dir), encoding="utf-8")
    return path


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
