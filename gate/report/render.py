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


def load_run(run_dir: Path) -> tuple[Manifest, Results]:
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        raise ConfigError.one(str(manifest_path), None, "not a run directory (no manifest.json)")
    for name in (RESULTS, PARTIAL):
        if (run_dir / name).exists():
            return read_manifest(run_dir), read_results(run_dir / name)
    raise ConfigError.one(str(run_dir), None, f"no {RESULTS} or {PARTIAL} in the run directory")


def headline(results: Results) -> str:
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
    return Markup(f"Status **{status}**, verdict **{verdict}** ({arms}){breach}.")


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
    manifest, results = load_run(run_dir)
    rows = [row.to_json() for row in results.tasks]
    url = _summary_url()  # from the runner's environment, not from the run
    url = Markup(url) if url else None
    shown = len(rows)
    while True:
        text = _ENV.get_template("report.md.j2").render(
            results=results.to_json(), manifest=manifest.to_json(), headline=headline(results),
            stages=_stages(run_dir),
            summary_line=_summary_line(results, manifest), task_rows=rows[:shown],
            truncated=len(rows) - shown, summary_url=url, chart=_chart(results),
            pct=_trusted(_pct), usd=_trusted(_usd), num=_trusted(_num), sci=_trusted(_sci),
            passk=_trusted(_passk),
            spent=sum(a.cost_usd for a in results.arms.values()),
            traces=_failed_traces(run_dir),
        )
        if len(text) < limit or shown == 0:
            return text
        shown = max(0, shown - max(1, shown // 4))


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
    slos = results.slos
    if slos:
        for c in slos.checks:
            print(f"  SLO {c.slo}: {c.value} {c.direction} {c.limit} -> "
                  f"{'ok' if c.ok else 'BREACH'}", file=out)
