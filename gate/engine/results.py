"""results.json: a pure function of the manifest, trials.jsonl and audit.jsonl.

``gate verify`` calls the same function on the files on disk and compares, so every number
in a report can be traced to an artifact. Nothing here reads the clock or the network.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path

from gate.config.schema import SloConfig
from gate.engine.plan import units_of
from gate.engine.slos import evaluate_slos
from gate.records import (
    SCHEMA_VERSION,
    ArmSpec,
    ArmSummary,
    AuditAttempt,
    CellNotDone,
    Decision,
    EnvironmentErrorExample,
    EnvironmentErrors,
    Evidence,
    HaltRecord,
    Manifest,
    ProviderErrors,
    Results,
    ScopeAccounting,
    ScopeCounts,
    Status,
    TaskArm,
    TaskRow,
    TraceMetrics,
    Trial,
    Verdict,
)
from gate.statistics import pass_hat_k, percentile, wilson_interval

__all__ = ["SCHEMA_VERSION", "compute_results", "evidence_of", "file_sha256"]

COST_DIVERGENCE = 0.05  # reported vs computed cost, relative
MAX_PASS_K = 8
MAX_ENV_ERROR_EXAMPLES = 5


def file_sha256(path: Path) -> str | None:
    if not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evidence_of(run_dir: Path, audit: list[AuditAttempt]) -> Evidence:
    """The hashes of the artifacts the results are derived from (rule 1)."""
    return Evidence(
        audit_sha256=file_sha256(run_dir / "audit.jsonl"),
        trials_sha256=file_sha256(run_dir / "trials.jsonl"),
        manifest_sha256=file_sha256(run_dir / "manifest.json"),
        response_ids=sum(1 for a in audit if a.response_id),
        attempts=len(audit),
    )


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(x, nd)


def _f(x: float | None, nd: int = 6) -> float:
    return round(x or 0.0, nd)


def arm_summary(arm: ArmSpec, trials: list[Trial], audit: list[AuditAttempt]) -> ArmSummary:
    """Per-arm figures. Trials lost to the provider or to an environment error (the harness's
    fault) are excluded from every success denominator and counted apart."""
    scored = [t for t in trials if t.status == "scored"]
    lost = [t for t in trials if t.status == "provider_error"]
    broken = [t for t in trials if t.status == "environment_error"]
    not_scored = Counter(t.status for t in trials
                         if t.status not in ("scored", "provider_error", "environment_error"))
    n = len(scored)
    successes = sum(1 for t in scored if t.success)
    failed = [a for a in audit if a.outcome != "ok"]
    cost = sum(a.cost_computed_usd for a in audit)
    reported = [a.cost_reported_usd for a in audit if a.cost_reported_usd is not None]
    divergent = sum(1 for a in audit if _diverges(a))
    latencies = sorted(t.latency_s or 0.0 for t in scored)
    by_task: dict[str, list[bool]] = defaultdict(list)
    for t in scored:
        by_task[t.task].append(bool(t.success))
    # pass^k over the tasks with at least k trials (all of them under the rounds schedule)
    max_k = min(max((len(v) for v in by_task.values()), default=0), MAX_PASS_K)
    lo, hi = wilson_interval(successes, n) if n else (0.0, 0.0)
    return ArmSummary(
        **arm.model_dump(),
        trials=n,
        successes=successes,
        success_rate=_r(successes / n) if n else None,
        success_interval=(_f(lo, 4), _f(hi, 4)) if n else None,
        mean_reward=_r(sum(t.reward or 0.0 for t in scored) / n) if n else None,
        pass_k={
            str(k): _r(pass_hat_k([(len(v), sum(v)) for v in by_task.values()], k).value, 4)
            for k in range(1, max_k + 1)
        },
        provider_errors=ProviderErrors(
            total=len(failed),
            by_kind=dict(sorted(Counter(a.outcome for a in failed).items())),
        ),
        trials_lost_to_provider=len(lost),
        environment_errors=EnvironmentErrors(
            total=len(broken),
            examples=[EnvironmentErrorExample(trial_id=t.trial_id,
                                              **t.environment_error.model_dump())
                      for t in broken[:MAX_ENV_ERROR_EXAMPLES] if t.environment_error],
        ),
        trials_not_scored=dict(sorted(not_scored.items())),
        attempts=len(audit),
        response_ids=sum(1 for a in audit if a.response_id),
        cost_usd=_f(cost, 8),
        cost_reported_usd=_r(sum(reported), 8) if reported else None,
        cost_divergences=divergent,
        truncations=sum(t.truncations or 0 for t in scored),
        refusals=sum(len(t.refusals or []) for t in scored),
        cost_per_success_usd=_r(cost / successes, 8) if successes else None,
        p50_s=_r(percentile(latencies, 0.50)) if latencies else None,
        p95_s=_r(percentile(latencies, 0.95)) if latencies else None,
        metrics=_trace_metrics(scored),
    )


def _diverges(a: AuditAttempt) -> bool:
    if a.cost_reported_usd is None:
        return False
    rep, comp = a.cost_reported_usd, a.cost_computed_usd
    scale = max(abs(rep), abs(comp))
    return scale > 0 and abs(rep - comp) / scale > COST_DIVERGENCE


def _mean(values: list[float]) -> float | None:
    return _r(sum(values) / len(values)) if values else None


def _trace_metrics(scored: list[Trial]) -> TraceMetrics:
    def col(values: list[float | int | None]) -> list[float]:
        return [float(v) for v in values if v is not None]

    return TraceMetrics(
        evidence_coverage=_mean(col([t.evidence_coverage for t in scored])),
        tool_call_accuracy=_mean(col([t.tool_call_accuracy for t in scored])),
        parseable_rate=_mean(col([t.parseable_rate for t in scored])),
        invalid_actions=int(sum(col([t.invalid_actions for t in scored]))),
        wrong_fixes=int(sum(col([t.wrong_fixes for t in scored]))),
        distractor_actions=int(sum(col([t.distractor_actions for t in scored]))),
        repeated_calls=int(sum(col([t.repeated_calls for t in scored]))),
        policy_violations=sum(len(t.policy_violations or []) for t in scored),
        mean_steps=_mean(col([t.steps for t in scored])),
        tokens_in=int(sum(col([t.tokens_in for t in scored]))),
        tokens_out=int(sum(col([t.tokens_out for t in scored]))),
    )


def scope_accounting(
    manifest: Manifest,
    trials: list[Trial],
    *,
    decided_round: int | None,
    halt: HaltRecord | None,
    stopped: str | None = None,
) -> ScopeAccounting:
    """Every planned cell ends as done, lost to the provider, lost to an environment error,
    not scored, not needed, or not run."""
    scope = manifest.scope
    by_id = {t.trial_id: t for t in trials}
    counts: Counter[str] = Counter()
    not_done: list[CellNotDone] = []
    units = units_of(scope)
    for unit in units:
        for arm in scope.arms:
            trial = by_id.get(unit.trial_id(arm))
            if trial is not None:
                if trial.status == "scored":
                    counts["done"] += 1
                    continue
                state, reason = _trial_state(trial)
            elif decided_round is not None and unit.batch > decided_round:
                state, reason = "not_needed", f"decided at check {decided_round}"
            elif halt is not None:
                state, reason = "not_run", f"{halt.kind}: {halt.reason}"
            elif stopped is not None:
                state, reason = "not_run", stopped
            else:
                state, reason = "not_run", "not started"
            counts[state] += 1
            not_done.append(CellNotDone.model_validate(
                {"arm": arm, "task": unit.task, "round": unit.index, "state": state,
                 "reason": reason}))
    return ScopeAccounting(
        planned=len(units) * len(scope.arms),
        counts=ScopeCounts(**{k: counts.get(k, 0) for k in ScopeCounts.model_fields}),
        cells_not_done=not_done,
    )


def _trial_state(trial: Trial) -> tuple[str, str]:
    """A finished cell not done: lost to the provider, or not scored (e.g. ``no_model_call``)."""
    if trial.status == "provider_error":
        return "lost_to_provider", trial.provider_error.kind if trial.provider_error else "?"
    if trial.status == "environment_error" and trial.environment_error is not None:
        err = trial.environment_error
        at = f" at {err.file}:{err.line}" if err.file else ""
        return "environment_error", f"{err.type} in {err.phase}{at}"
    return "not_scored", trial.status


def per_task(manifest: Manifest, trials: list[Trial]) -> list[TaskRow]:
    rows = []
    for task in manifest.scope.tasks:
        arms: dict[str, TaskArm] = {}
        environment = difficulty = None
        for arm in manifest.scope.arms:
            ts = [t for t in trials if t.task == task and t.arm == arm]
            scored = [t for t in ts if t.status == "scored"]
            arms[arm] = TaskArm(
                trials=len(scored),
                successes=sum(1 for t in scored if t.success),
                mean_reward=_mean([t.reward or 0.0 for t in scored]),
                lost=sum(1 for t in ts if t.status == "provider_error"),
                environment_errors=sum(1 for t in ts if t.status == "environment_error"),
            )
            if scored:
                environment, difficulty = scored[0].environment, scored[0].difficulty
        rows.append(TaskRow(task=task, environment=environment, difficulty=difficulty,
                            arms=arms,
                            pairs=_complete_pairs(trials, task, list(manifest.scope.arms))))
    return rows


def _complete_pairs(trials: list[Trial], task: str, arms: list[str]) -> int:
    """Units of ``task`` that every arm scored: the paired trials a task's figures rest on.

    Under the ``iid`` schedule tasks are drawn at random, so this count differs by task.
    """
    scored: dict[str, set[int]] = {arm: set() for arm in arms}
    for t in trials:
        if t.task == task and t.status == "scored" and t.arm in scored:
            scored[t.arm].add(t.round)
    return len(set.intersection(*scored.values())) if scored else 0


def compute_results(
    manifest: Manifest,
    trials: list[Trial],
    audit: list[AuditAttempt],
    *,
    halt: HaltRecord | None,
    lost_share_inconclusive: float,
    evidence: Evidence,
    decision: Decision | None = None,
    slo_config: SloConfig | None = None,
    verdict: Verdict | None = None,
) -> Results:
    arms = {
        a.name: arm_summary(
            a,
            [t for t in trials if t.arm == a.name],
            [x for x in audit if x.arm == a.name],
        )
        for a in manifest.arms
    }
    slos = None if slo_config is None else evaluate_slos(slo_config, arms["candidate"])
    decided = decision.decided_round if decision else None
    stopped = decision.stopped if decision else None
    scope = scope_accounting(manifest, trials, decided_round=decided, halt=halt, stopped=stopped)
    status, reasons = _status(arms, trials, halt, lost_share_inconclusive)
    if stopped is not None and status == "complete":
        status, reasons = "inconclusive", [*reasons, stopped]
    if status != "complete" and verdict in ("pass", "regression"):
        verdict = "inconclusive" if status == "inconclusive" else None
    return Results(
        run_id=manifest.run_id,
        kind=manifest.kind,
        status=status,
        status_reasons=reasons,
        verdict=verdict,
        halt=halt,
        scope=scope,
        arms=arms,
        decision=decision,
        slos=slos,
        tasks=per_task(manifest, trials),
        evidence=evidence,
    )


def _status(
    arms: dict[str, ArmSummary], trials: list[Trial], halt: HaltRecord | None,
    lost_share_max: float,
) -> tuple[Status, list[str]]:
    reasons: list[str] = []
    if halt is not None:
        reasons.append(f"{halt.kind}: {halt.reason} at task {halt.task}, round {halt.round}")
        return ("paused" if halt.kind == "paused" else "halted"), reasons
    lost = sum(1 for t in trials if t.status == "provider_error")
    if trials and lost / len(trials) > lost_share_max:
        reasons.append(f"{lost} of {len(trials)} trials lost to provider errors "
                       f"(> {lost_share_max:.0%}): provider artifact, not a ranking")
    broken = sum(1 for t in trials if t.status == "environment_error")
    if trials and broken / len(trials) > lost_share_max:
        reasons.append(f"{broken} of {len(trials)} trials lost to environment errors "
                       f"(> {lost_share_max:.0%}): the harness failed, not the model")
    not_scored = sum(1 for t in trials if t.status not in (
        "scored", "provider_error", "environment_error"))
    if trials and not_scored / len(trials) > lost_share_max:
        reasons.append(f"{not_scored} of {len(trials)} trials not scored (e.g. the agent program "
                       f"made no model call; > {lost_share_max:.0%})")
    scored_without_id = [t.trial_id for t in trials
                         if t.status == "scored" and not t.response_ids]
    if scored_without_id:
        reasons.append(f"{len(scored_without_id)} scored trial(s) without a provider response id")
    if not any(a.response_ids for a in arms.values()):
        reasons.append("no provider response id in the audit log: nothing was measured")
    return ("inconclusive" if reasons else "complete"), reasons
