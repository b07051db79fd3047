"""The coverage summary of imported traffic: how many sessions became tasks and why the others
did not, intents (the sequence of tools a session used), tools, labels, redactions, and the
p50/p95 of steps, latency and cost (percentiles, not means: traffic is long-tailed)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from gate.errors import Problem
from gate.statistics.reliability import percentile
from gate.traffic.session import Episode, Session


def _pcts(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p95": None}
    return {"n": len(values), "p50": round(percentile(values, 0.5, "nearest"), 6),
            "p95": round(percentile(values, 0.95, "nearest"), 6)}


def intent(ep: Episode) -> str:
    names: list[str] = []
    for c in ep.calls:
        if c.tool not in names:
            names.append(c.tool)
    return " > ".join(names)


def coverage(
    read: list[Session], chosen: list[Session], dropped: Counter[str], eps: list[Episode],
    tasks: list[tuple[Episode, bool, int]], problems: list[Problem], redactions: Counter[str],
    writes: set[str], labels: Counter[str],
) -> dict[str, Any]:
    """Counts over the traffic imported (every session read into calls, near-duplicates
    included; ``labels`` too); ``tasks`` and ``needs_label`` over the tasks written."""
    return {
        "sessions_read": len(read),
        "sessions_selected": len(chosen),
        "left_out": dict(sorted(dropped.items())),
        "problems": len(problems),  # lines, sessions or attributes skipped
        "sessions_imported": len(eps),
        "tasks": len(tasks),
        "needs_label": sum(1 for _, good, _ in tasks if not good),
        "merged_duplicates": sum(m for _, _, m in tasks),
        "labels": dict(sorted(labels.items())),
        "intents": dict(Counter(intent(ep) for ep in eps).most_common()),
        "tools": dict(sorted(Counter(c.tool for ep in eps for c in ep.calls).items())),
        "write_tools": sorted(writes),
        "steps": _pcts([float(ep.steps) for ep in eps]),
        "latency_s": _pcts([ep.session.latency_s for ep in eps
                            if ep.session.latency_s is not None]),
        "cost_usd": _pcts([ep.session.cost_usd for ep in eps
                           if ep.session.cost_usd is not None]),
        "redactions": dict(sorted(redactions.items())),
    }


def render(summary: dict[str, Any]) -> list[str]:
    """The summary as the lines ``gate import-traces`` prints (counts only, never values)."""
    def pct(key: str, unit: str = "") -> str:
        p = summary[key]
        if not p["n"]:
            return f"{key}: not recorded"
        return f"{key}: p50 {p['p50']:g}{unit}, p95 {p['p95']:g}{unit} (n={p['n']})"

    left = ", ".join(f"{n} {why}" for why, n in summary["left_out"].items()) or "none"
    reds = ", ".join(f"{n} {k.lower()}" for k, n in summary["redactions"].items()) or "none"
    lines = [
        f"sessions: {summary['sessions_read']} read, {summary['sessions_selected']} selected "
        f"(left out: {left}), {summary['sessions_imported']} imported; "
        f"{summary['problems']} problem(s) reported above",
        f"tasks: {summary['tasks']} ({summary['merged_duplicates']} near-duplicate sessions "
        f"merged), {summary['needs_label']} need a label",
        "labels: " + (", ".join(f"{n} {k}" for k, n in summary["labels"].items()) or "none"),
        f"intents: {len(summary['intents'])}; tools: "
        + ", ".join(f"{k} ({n})" for k, n in summary["tools"].items()),
        "write tools (graded): " + (", ".join(summary["write_tools"]) or "none"),
        pct("steps"), pct("latency_s", " s"), pct("cost_usd", " USD"),
        f"redacted: {reds}",
    ]
    return lines
