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
from gate.engine.plan import batches, units_of
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
    return {
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
        "accounting": accounting(manifest, trials, audit, decision),
        "regressed_tasks": regressed_tasks(manifest, trials),
    }


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


# --- accounting: every trial on disk, used by the decision or run after it ---------------

TOP_UP_WHY = ("statistics.pass_k_top_up: rounds run after the decision so that every task has "
              "k trials for the pass^k SLO")
SAME_BATCH_WHY = ("run in the same batch as the pair that decided ({batch} pairs run at once); "
                  "the decision did not use them")
ACCOUNTING_BUCKETS = ("used_by_decision", "lost_to_provider", "environment_errors",
                      "not_scored", "unpaired", "after_decision", "outside_plan")
UNFINISHED_WHY = "run in a check that did not finish (halted, paused or stopped): not used yet"


def _decision_span(
    manifest: dict[str, Any], trials_by_id: dict[str, dict[str, Any]], decision: dict[str, Any],
) -> tuple[set[str], set[str]]:
    """The trial ids whose pairs the decision used, and every trial id planned up to the last
    pair it used (the span: lost and unpaired trials inside it count as the decision's)."""
    scope, pairs_left = manifest["scope"], int(decision["pairs"])
    fed = [unit for group in batches(units_of(scope))[: int(decision["rounds"])]
           for unit in group]
    arms = list(scope["arms"])
    used: set[str] = set()
    span: set[str] = set()
    complete = 0
    for unit in fed:
        ids = [unit.trial_id(arm) for arm in arms]
        if all(trials_by_id.get(i, {}).get("status") == "scored" for i in ids):
            complete += 1
    whole_batches = complete == pairs_left  # the test read every pair it was fed
    for unit in fed:
        ids = [unit.trial_id(arm) for arm in arms]
        if not whole_batches and pairs_left == 0:
            break
        span.update(ids)
        if all(trials_by_id.get(i, {}).get("status") == "scored" for i in ids) and pairs_left:
            used.update(ids)
            pairs_left -= 1
    return used, span


def _after_why(manifest: dict[str, Any], decision: dict[str, Any],
               after: list[dict[str, Any]]) -> str | None:
    if not after:
        return None
    decided = decision.get("decided_round")
    if decided is None:
        return UNFINISHED_WHY
    batch_of = {u.trial_id(arm): u.batch for u in units_of(manifest["scope"])
                for arm in manifest["scope"]["arms"]}
    if any(batch_of[t["trial_id"]] > int(decided) for t in after):
        return TOP_UP_WHY
    return SAME_BATCH_WHY.format(batch=manifest["statistics"].get("batch", "?"))


def accounting(
    manifest: dict[str, Any], trials: list[dict[str, Any]], audit: list[dict[str, Any]],
    decision: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """Where every trial line of a sweep went: used by the decision (or inside its span but
    lost, broken or unpaired), run after it (why, and what it cost), or outside the plan.

    Per arm, the counts sum to the arm's lines in trials.jsonl, and the three costs to the
    arm's audit cost (audit lines of a cell without a trial line count as ``other``)."""
    if decision is None:
        return None
    by_id = {t["trial_id"]: t for t in trials}
    used, span = _decision_span(manifest, by_id, decision)
    planned = {u.trial_id(arm) for u in units_of(manifest["scope"])
               for arm in manifest["scope"]["arms"]}
    cost_of: dict[tuple[str, str, int], float] = defaultdict(float)
    for a in audit:
        cost_of[(a["arm"], a["task"], int(a["round"]))] += float(a.get("cost_computed_usd") or 0)
    after = [t for t in trials if t["trial_id"] in planned and t["trial_id"] not in span]
    arms = {}
    for arm in manifest["scope"]["arms"]:
        arms[arm] = _arm_accounting(arm, [t for t in trials if t["arm"] == arm], used, span,
                                    planned, cost_of)
    return {
        "decision_pairs": int(decision["pairs"]),
        "after_decision_trials": len(after),
        "after_decision_cost_usd": _r(sum((float(a["cost_after_decision_usd"])
                                           for a in arms.values()), 0.0), 8),
        "after_decision_why": _after_why(manifest, decision, after),
        "arms": arms,
    }


def _arm_accounting(
    arm: str, trials: list[dict[str, Any]], used: set[str], span: set[str], planned: set[str],
    cost_of: dict[tuple[str, str, int], float],
) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    costs: dict[str, float] = defaultdict(float)
    for t in trials:
        tid, status = t["trial_id"], t["status"]
        if tid not in planned:
            bucket = "outside_plan"
        elif tid not in span:
            bucket = "after_decision"
        elif tid in used:
            bucket = "used_by_decision"
        elif status == "scored":
            bucket = "unpaired"  # its partner was lost: the pair was left out
        elif status == "environment_error":
            bucket = "environment_errors"
        elif status == "provider_error":
            bucket = "lost_to_provider"
        else:
            bucket = "not_scored"  # e.g. an agent program that made no model call
        counts[bucket] += 1
        phase = {"used_by_decision": "decision", "after_decision": "after_decision",
                 "outside_plan": "other"}.get(bucket, "decision")
        costs[phase] += cost_of.pop((arm, t["task"], int(t["round"])), 0.0)
    costs["other"] += sum(v for (a, _task, _r), v in cost_of.items() if a == arm)
    return {
        "trials_on_disk": len(trials),
        **{k: counts.get(k, 0) for k in ACCOUNTING_BUCKETS},
        "cost_decision_usd": _r(float(costs["decision"]), 8),
        "cost_after_decision_usd": _r(float(costs["after_decision"]), 8),
        "cost_other_usd": _r(float(costs["other"]), 8),
    }


# --- tasks the candidate did worse on, with why ------------------------------------------

REASONS = ("wrong_fix", "policy_violation", "invalid_action", "step_limit", "truncation",
           "refusal", "distractor_action", "wrong_end_state")


def failure_reasons(trial: dict[str, Any]) -> list[str]:
    """Why a scored trial failed, from its record's counts (never from free text).

    ``invalid_action:<kind>`` per kind of invalid call; ``wrong_end_state`` when nothing
    else in the record explains the failure."""
    reasons = []
    if trial.get("wrong_fixes"):
        reasons.append("wrong_fix")
    if trial.get("policy_violations"):
        reasons.append("policy_violation")
    kinds = [k for k, n in sorted((trial.get("invalid_by_kind") or {}).items()) if n]
    if not kinds and trial.get("invalid_actions"):
        kinds = ["unknown"]
    reasons.extend(f"invalid_action:{k}" for k in kinds)
    if trial.get("ended") == "step_limit":
        reasons.append("step_limit")
    if trial.get("ended") == "truncated" or trial.get("truncations"):
        reasons.append("truncation")
    if trial.get("refusals"):
        reasons.append("refusal")
    if trial.get("distractor_actions"):
        reasons.append("distractor_action")
    return reasons or ["wrong_end_state"]


def regressed_tasks(
    manifest: dict[str, Any], trials: list[dict[str, Any]],
    candidate: str = "candidate", baseline: str = "baseline",
) -> list[dict[str, Any]]:
    """Tasks whose candidate success rate is below the baseline's, worst first (ties: more
    candidate trials first), each with the candidate's failure reasons (failed trials per
    reason) and one failed trial's id."""
    if {candidate, baseline} - set(manifest["scope"]["arms"]):
        return []
    scored: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in trials:
        if t.get("status") == "scored":
            scored[(t["arm"], t["task"])].append(t)
    out = []
    for task in manifest["scope"]["tasks"]:
        cand, base = scored.get((candidate, task), []), scored.get((baseline, task), [])
        if not cand or not base:
            continue
        c_ok, b_ok = sum(1 for t in cand if t["success"]), sum(1 for t in base if t["success"])
        diff = c_ok / len(cand) - b_ok / len(base)
        if diff >= 0:
            continue
        failed = sorted((t for t in cand if not t["success"]), key=lambda t: int(t["round"]))
        reasons = Counter(r for t in failed for r in failure_reasons(t))
        out.append({
            "task": task,
            candidate: {"successes": c_ok, "trials": len(cand)},
            baseline: {"successes": b_ok, "trials": len(base)},
            "difference": _r(diff, 4),
            "reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            "example_trial": failed[0]["trial_id"] if failed else None,
        })
    # worst first; at equal difference, the task with more trials (firmer evidence) first
    return sorted(out, key=lambda row: (row["difference"], -row[candidate]["trials"],
                                        row["task"]))
