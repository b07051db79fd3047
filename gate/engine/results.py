"""results.json: a pure function of the manifest, trials.jsonl and audit.jsonl.

``gate verify`` calls the same function on the files on disk and compares, so every number
in a report can be traced to an artifact. Nothing here reads the clock or the network.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from gate.config.schema import SloConfig
from gate.engine.plan import units_of
from gate.engine.slos import evaluate_slos
from gate.statistics import pass_hat_k, percentile, wilson_interval

SCHEMA_VERSION = 1
COST_DIVERGENCE = 0.05  # reported vs computed cost, relative
MAX_PASS_K = 8


def file_sha256(path: Path) -> str | None:
    if not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(x, nd)


def arm_summary(
    arm: dict[str, Any], trials: list[dict[str, Any]], audit: list[dict[str, Any]],
) -> dict[str, Any]:
    """Per-arm figures. Provider errors are excluded from every success denominator."""
    scored = [t for t in trials if t.get("status") == "scored"]
    lost = [t for t in trials if t.get("status") == "provider_error"]
    not_scored = Counter(str(t.get("status")) for t in trials
                         if t.get("status") not in ("scored", "provider_error"))
    n = len(scored)
    successes = sum(1 for t in scored if t["success"])
    failed = [a for a in audit if a["outcome"] != "ok"]
    cost = sum(float(a.get("cost_computed_usd") or 0.0) for a in audit)
    reported = [a for a in audit if a.get("cost_reported_usd") is not None]
    divergent = sum(1 for a in reported if _diverges(a))
    latencies = sorted(float(t["latency_s"]) for t in scored)
    by_task: dict[str, list[bool]] = defaultdict(list)
    for t in scored:
        by_task[t["task"]].append(bool(t["success"]))
    # pass^k over the tasks with at least k trials (all of them under the rounds schedule)
    max_k = min(max((len(v) for v in by_task.values()), default=0), MAX_PASS_K)
    lo, hi = wilson_interval(successes, n) if n else (None, None)
    return {
        **arm,
        "trials": n,
        "successes": successes,
        "success_rate": _r(successes / n) if n else None,
        "success_interval": [_r(lo, 4), _r(hi, 4)] if n else None,
        "mean_reward": _r(sum(t["reward"] for t in scored) / n) if n else None,
        "pass_k": {
            str(k): _r(pass_hat_k([(len(v), sum(v)) for v in by_task.values()], k).value, 4)
            for k in range(1, max_k + 1)
        },
        "provider_errors": {
            "total": len(failed),
            "by_kind": dict(sorted(Counter(a["outcome"] for a in failed).items())),
        },
        "trials_lost_to_provider": len(lost),
        "trials_not_scored": dict(sorted(not_scored.items())),
        "attempts": len(audit),
        "response_ids": sum(1 for a in audit if a.get("response_id")),
        "cost_usd": _r(cost, 8),
        "cost_reported_usd": _r(sum(float(a["cost_reported_usd"]) for a in reported), 8)
        if reported else None,
        "cost_divergences": divergent,
        "truncations": sum(int(t.get("truncations") or 0) for t in scored),
        "refusals": sum(len(t.get("refusals") or []) for t in scored),
        "cost_per_success_usd": _r(cost / successes, 8) if successes else None,
        "p50_s": _r(percentile(latencies, 0.50)) if latencies else None,
        "p95_s": _r(percentile(latencies, 0.95)) if latencies else None,
        "metrics": _trace_metrics(scored),
    }


def _diverges(a: dict[str, Any]) -> bool:
    rep, comp = float(a["cost_reported_usd"]), float(a.get("cost_computed_usd") or 0.0)
    scale = max(abs(rep), abs(comp))
    return scale > 0 and abs(rep - comp) / scale > COST_DIVERGENCE


def _mean(values: list[float]) -> float | None:
    return _r(sum(values) / len(values)) if values else None


def _trace_metrics(scored: list[dict[str, Any]]) -> dict[str, Any]:
    def col(key: str) -> list[float]:
        return [float(t[key]) for t in scored if t.get(key) is not None]

    return {
        "evidence_coverage": _mean(col("evidence_coverage")),
        "tool_call_accuracy": _mean(col("tool_call_accuracy")),
        "parseable_rate": _mean(col("parseable_rate")),
        "invalid_actions": int(sum(col("invalid_actions"))),
        "wrong_fixes": int(sum(col("wrong_fixes"))),
        "distractor_actions": int(sum(col("distractor_actions"))),
        "repeated_calls": int(sum(col("repeated_calls"))),
        "policy_violations": sum(len(t.get("policy_violations") or []) for t in scored),
        "mean_steps": _mean(col("steps")),
        "tokens_in": int(sum(col("tokens_in"))),
        "tokens_out": int(sum(col("tokens_out"))),
    }


def scope_accounting(
    manifest: dict[str, Any],
    trials: list[dict[str, Any]],
    *,
    decided_round: int | None,
    halt: dict[str, Any] | None,
    stopped: str | None = None,
) -> dict[str, Any]:
    """Every planned cell ends as done, lost to the provider, not needed, or not run."""
    scope = manifest["scope"]
    by_id = {t["trial_id"]: t for t in trials}
    counts: Counter[str] = Counter()
    not_done: list[dict[str, Any]] = []
    units = units_of(scope)
    for unit in units:
        for arm in scope["arms"]:
            trial = by_id.get(unit.trial_id(arm))
            if trial is not None:
                state, reason = _trial_state(trial)
            elif decided_round is not None and unit.batch > decided_round:
                state, reason = "not_needed", f"decided at check {decided_round}"
            elif halt is not None:
                state, reason = "not_run", f"{halt['kind']}: {halt['reason']}"
            elif stopped is not None:
                state, reason = "not_run", stopped
            else:
                state, reason = "not_run", "not started"
            counts[state] += 1
            if state != "done":
                not_done.append({"arm": arm, "task": unit.task, "round": unit.index,
                                 "state": state, "reason": reason})
    planned = len(units) * len(scope["arms"])
    return {
        "planned": planned,
        "counts": {k: counts.get(k, 0) for k in ("done", "lost_to_provider", "not_scored",
                                                  "not_needed", "not_run")},
        "cells_not_done": not_done,
    }


def _trial_state(trial: dict[str, Any]) -> tuple[str, str | None]:
    """A finished cell: done, lost to the provider, or not scored (e.g. ``no_model_call``)."""
    if trial["status"] == "scored":
        return "done", None
    if trial["status"] == "provider_error":
        return "lost_to_provider", trial["provider_error"]["kind"]
    return "not_scored", str(trial["status"])


def per_task(
    manifest: dict[str, Any], trials: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    rows = []
    for task in manifest["scope"]["tasks"]:
        row: dict[str, Any] = {"task": task}
        for arm in manifest["scope"]["arms"]:
            ts = [t for t in trials if t["task"] == task and t["arm"] == arm]
            scored = [t for t in ts if t["status"] == "scored"]
            row[arm] = {
                "trials": len(scored),
                "successes": sum(1 for t in scored if t["success"]),
                "mean_reward": _mean([float(t["reward"]) for t in scored]),
                "lost": len(ts) - len(scored),
            }
            if scored:
                row["environment"] = scored[0].get("environment")
                row["difficulty"] = scored[0].get("difficulty")
        row["pairs"] = _complete_pairs(trials, task, manifest["scope"]["arms"])
        rows.append(row)
    return rows


def _complete_pairs(trials: list[dict[str, Any]], task: str, arms: list[str]) -> int:
    """Units of ``task`` that every arm scored: the paired trials a task's figures rest on.

    Under the ``iid`` schedule tasks are drawn at random, so this count differs by task.
    """
    scored: dict[str, set[int]] = {arm: set() for arm in arms}
    for t in trials:
        if t["task"] == task and t["status"] == "scored" and t["arm"] in scored:
            scored[t["arm"]].add(int(t["round"]))
    return len(set.intersection(*scored.values())) if scored else 0


def compute_results(
    manifest: dict[str, Any],
    trials: list[dict[str, Any]],
    audit: list[dict[str, Any]],
    *,
    halt: dict[str, Any] | None,
    lost_share_inconclusive: float,
    decision: dict[str, Any] | None = None,
    slo_config: SloConfig | None = None,
    verdict: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    arms = {
        a["name"]: arm_summary(
            a,
            [t for t in trials if t["arm"] == a["name"]],
            [x for x in audit if x["arm"] == a["name"]],
        )
        for a in manifest["arms"]
    }
    slos = None if slo_config is None else evaluate_slos(slo_config, arms["candidate"])
    decided = decision.get("decided_round") if decision else None
    stopped = decision.get("stopped") if decision else None
    scope = scope_accounting(manifest, trials, decided_round=decided, halt=halt, stopped=stopped)
    status, reasons = _status(arms, trials, halt, lost_share_inconclusive)
    if stopped is not None and status == "complete":
        status, reasons = "inconclusive", [*reasons, stopped]
    if status != "complete" and verdict in ("pass", "regression"):
        verdict = "inconclusive" if status == "inconclusive" else None
    out = {
        "schema_version": SCHEMA_VERSION,
        "run_id": manifest["run_id"],
        "kind": manifest["kind"],
        "status": status,
        "status_reasons": reasons,
        "verdict": verdict,
        "halt": halt,
        "scope": scope,
        "arms": arms,
        "decision": decision,
        "slos": slos,
        "tasks": per_task(manifest, trials),
        "evidence": evidence or {},
    }
    if manifest.get("stages") is not None:  # a sharded sweep's merged run (gate merge)
        out["stages"] = manifest["stages"]
    return out


def _status(
    arms: dict[str, Any], trials: list[dict[str, Any]], halt: dict[str, Any] | None,
    lost_share_max: float,
) -> tuple[str, list[str]]:
    reasons: list[str] = []
    if halt is not None:
        reasons.append(f"{halt['kind']}: {halt['reason']} at task {halt['task']}, "
                       f"round {halt['round']}")
        return ("paused" if halt["kind"] == "paused" else "halted"), reasons
    lost = sum(1 for t in trials if t["status"] == "provider_error")
    if trials and lost / len(trials) > lost_share_max:
        reasons.append(f"{lost} of {len(trials)} trials lost to provider errors "
                       f"(> {lost_share_max:.0%}): provider artifact, not a ranking")
    not_scored = sum(1 for t in trials if t["status"] not in ("scored", "provider_error"))
    if trials and not_scored / len(trials) > lost_share_max:
        reasons.append(f"{not_scored} of {len(trials)} trials not scored (e.g. the agent program "
                       f"made no model call; > {lost_share_max:.0%})")
    scored_without_id = [t["trial_id"] for t in trials
                         if t["status"] == "scored" and not t.get("response_ids")]
    if scored_without_id:
        reasons.append(f"{len(scored_without_id)} scored trial(s) without a provider response id")
    if not any(a["response_ids"] for a in arms.values()):
        reasons.append("no provider response id in the audit log: nothing was measured")
    return ("inconclusive" if reasons else "complete"), reasons
