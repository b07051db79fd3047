"""results.json: a pure function of the manifest, trials.jsonl and audit.jsonl.

``gate verify`` calls the same function on the files on disk and compares, so every number
in a report can be traced to an artifact. Nothing here reads the clock or the network.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path

from gate.agent.failures import program_failures
from gate.config.schema import SloConfig
from gate.engine.decision import arm_fault, loss_imbalance, trial_value
from gate.engine.plan import batches, units_of
from gate.engine.reuse import reuse_facts
from gate.engine.slos import evaluate_slos
from gate.records import (
    SCHEMA_VERSION,
    Accounting,
    ArmAccounting,
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
    RegressedTask,
    Results,
    ScopeAccounting,
    ScopeCounts,
    Status,
    TaskArm,
    TaskFigures,
    TaskRow,
    TraceMetrics,
    Trial,
    TrialScores,
    Verdict,
)
from gate.rundir import RunDir
from gate.statistics import pass_hat_k, percentile, wilson_interval

__all__ = ["SCHEMA_VERSION", "compute_results", "evidence_of", "file_sha256"]

COST_DIVERGENCE = 0.05  # reported vs computed cost, relative
MAX_PASS_K = 8
MAX_ENV_ERROR_EXAMPLES = 5


def file_sha256(path: Path) -> str | None:
    if not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evidence_of(run: RunDir, audit: list[AuditAttempt]) -> Evidence:
    """The hashes of the artifacts the results are derived from (rule 1)."""
    return Evidence(
        audit_sha256=file_sha256(run.audit_path),
        trials_sha256=file_sha256(run.trials_path),
        manifest_sha256=file_sha256(run.manifest_path),
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
    paid = [a for a in audit if a.reused_from is None]  # reused: paid by an earlier run
    cost = sum(a.cost_computed_usd for a in paid)
    reported = [a.cost_reported_usd for a in paid if a.cost_reported_usd is not None]
    divergent = sum(1 for a in paid if _diverges(a))
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
    slos = None if slo_config is None else evaluate_slos(
        slo_config, arms["candidate"], used=_used_candidate(manifest, trials, decision),
        audit=[a for a in audit if a.arm == "candidate"], stats=manifest.statistics)
    decided = decision.decided_round if decision else None
    stopped = decision.stopped if decision else None
    scope = scope_accounting(manifest, trials, decided_round=decided, halt=halt, stopped=stopped)
    status, reasons = _status(arms, trials, halt, lost_share_inconclusive,
                              paired=decision is not None)
    if stopped is not None and status == "complete":
        status, reasons = "inconclusive", [*reasons, stopped]
    imbalance = None if decision is None else loss_imbalance(
        trials, units_of(manifest.scope), manifest.statistics.score)
    if imbalance is not None and status in ("complete", "inconclusive"):
        status, reasons = "inconclusive", [*reasons, imbalance]
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
        accounting=accounting(manifest, trials, audit, decision),
        regressed_tasks=regressed_tasks(manifest, trials),
        continuations=manifest.continuations,
        reuse=reuse_facts(trials, audit),
        subset=manifest.subset,
    )


def _used_candidate(manifest: Manifest, trials: list[Trial],
                    decision: Decision | None) -> list[Trial] | None:
    """The candidate's trials in the pairs the decision used, in the decision's order."""
    if decision is None:
        return None
    by_id = {t.trial_id: t for t in trials}
    used, _span = _decision_span(manifest, by_id, decision)
    return [by_id[tid] for u in units_of(manifest.scope)
            if (tid := u.trial_id("candidate")) in used]


def _status(
    arms: dict[str, ArmSummary], trials: list[Trial], halt: HaltRecord | None,
    lost_share_max: float, *, paired: bool = False,
) -> tuple[Status, list[str]]:
    status, reasons = _status_of_trials(arms, trials, halt, lost_share_max, paired=paired)
    return status, [*program_failures(trials), *reasons]  # the program named before any task


def _status_of_trials(
    arms: dict[str, ArmSummary], trials: list[Trial], halt: HaltRecord | None,
    lost_share_max: float, *, paired: bool = False,
) -> tuple[Status, list[str]]:
    reasons: list[str] = []
    if halt is not None:
        reasons.append(f"{halt.kind}: {halt.reason} at task {halt.task}, round {halt.round}")
        return ("paused" if halt.kind == "paused" else "halted"), reasons
    # in a sweep's decision a loss the arm caused is scored as its failure
    # (gate.engine.decision.arm_fault): a measurement of the arm, not a lost one
    def scored_as_failure(t: Trial) -> bool:
        return paired and arm_fault(t)

    lost = sum(1 for t in trials if t.status == "provider_error" and not scored_as_failure(t))
    if trials and lost / len(trials) > lost_share_max:
        reasons.append(f"{lost} of {len(trials)} trials lost to provider errors "
                       f"(> {lost_share_max:.0%}): provider artifact, not a ranking")
    broken = sum(1 for t in trials if t.status == "environment_error")
    if trials and broken / len(trials) > lost_share_max:
        reasons.append(f"{broken} of {len(trials)} trials lost to environment errors "
                       f"(> {lost_share_max:.0%}): the harness failed, not the model")
    not_scored = sum(1 for t in trials if t.status not in (
        "scored", "provider_error", "environment_error") and not scored_as_failure(t))
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


# --- accounting: every trial on disk, used by the decision or run after it ---------------

TOP_UP_WHY = ("statistics.pass_k_top_up: rounds run after the decision so that every task has "
              "k trials for the pass^k SLO")
SAME_BATCH_WHY = ("run in the same batch as the pair that decided ({batch} pairs run at once); "
                  "the decision did not use them")
UNFINISHED_WHY = "run in a check that did not finish (halted, paused or stopped): not used yet"


def _decision_span(
    manifest: Manifest, by_id: dict[str, Trial], decision: Decision,
) -> tuple[set[str], set[str]]:
    """The trial ids whose pairs the decision used, and every trial id planned up to the last
    pair it used (the span: lost and unpaired trials inside it count as the decision's)."""
    arms = list(manifest.scope.arms)
    fed = [unit for group in batches(units_of(manifest.scope))[: decision.rounds]
           for unit in group]

    def complete(ids: list[str]) -> bool:
        return all(i in by_id and trial_value(by_id[i], manifest.statistics.score) is not None
                   for i in ids)

    pairs_left = decision.pairs
    whole_batches = sum(1 for u in fed if complete([u.trial_id(a) for a in arms])) == pairs_left
    used: set[str] = set()
    span: set[str] = set()
    for unit in fed:
        if not whole_batches and pairs_left == 0:
            break  # the test stopped at a pair inside the batch (per-pair checks)
        ids = [unit.trial_id(arm) for arm in arms]
        span.update(ids)
        if pairs_left and complete(ids):
            used.update(ids)
            pairs_left -= 1
    return used, span


def _after_why(manifest: Manifest, decision: Decision, after: list[Trial]) -> str | None:
    if not after:
        return None
    if decision.decided_round is None:
        return UNFINISHED_WHY
    batch_of = {u.trial_id(arm): u.batch for u in units_of(manifest.scope)
                for arm in manifest.scope.arms}
    if any(batch_of[t.trial_id] > decision.decided_round for t in after):
        return TOP_UP_WHY
    return SAME_BATCH_WHY.format(batch=manifest.statistics.batch)


def accounting(
    manifest: Manifest, trials: list[Trial], audit: list[AuditAttempt],
    decision: Decision | None,
) -> Accounting | None:
    """Where every trial line of a sweep went: used by the decision (or inside its span but
    lost, broken, not scored or unpaired), run after it (why, and what it cost), or outside
    the plan. Per arm the counts sum to the arm's lines in trials.jsonl, and the three costs
    to the arm's audit cost (calls of a cell without a trial line count as ``other``)."""
    if decision is None:
        return None
    by_id = {t.trial_id: t for t in trials}
    used, span = _decision_span(manifest, by_id, decision)
    planned = {u.trial_id(arm) for u in units_of(manifest.scope) for arm in manifest.scope.arms}
    cost_of: dict[tuple[str, str, int], float] = defaultdict(float)
    for a in audit:
        cost_of[(a.arm, a.task, a.round)] += a.cost_computed_usd
    after = [t for t in trials if t.trial_id in planned and t.trial_id not in span]
    arms = {arm: _arm_accounting(arm, [t for t in trials if t.arm == arm], used, span,
                                 planned, cost_of)
            for arm in manifest.scope.arms}
    return Accounting(
        decision_pairs=decision.pairs,
        after_decision_trials=len(after),
        after_decision_cost_usd=_f(sum(a.cost_after_decision_usd for a in arms.values()), 8),
        after_decision_why=_after_why(manifest, decision, after),
        arms=arms,
    )


def _bucket(trial: Trial, used: set[str], span: set[str], planned: set[str]) -> str:
    if trial.trial_id not in planned:
        return "outside_plan"
    if trial.trial_id not in span:
        return "after_decision"
    if trial.trial_id in used:
        return "used_by_decision"
    return {"scored": "unpaired",  # its partner was not scored: the pair was left out
            "provider_error": "lost_to_provider",
            "environment_error": "environment_errors"}.get(str(trial.status), "not_scored")


def _arm_accounting(
    arm: str, trials: list[Trial], used: set[str], span: set[str], planned: set[str],
    cost_of: dict[tuple[str, str, int], float],
) -> ArmAccounting:
    counts: Counter[str] = Counter()
    costs: dict[str, float] = defaultdict(float)
    for t in trials:
        bucket = _bucket(t, used, span, planned)
        counts[bucket] += 1
        phase = {"after_decision": "after", "outside_plan": "other"}.get(bucket, "decision")
        costs[phase] += cost_of.pop((arm, t.task, t.round), 0.0)
    costs["other"] += sum(v for (name, _task, _round), v in cost_of.items() if name == arm)
    return ArmAccounting(
        trials_on_disk=len(trials),
        **{k: counts.get(k, 0) for k in ArmAccounting.model_fields
           if not k.startswith("cost_") and k != "trials_on_disk"},
        cost_decision_usd=_f(costs["decision"], 8),
        cost_after_decision_usd=_f(costs["after"], 8),
        cost_other_usd=_f(costs["other"], 8),
    )


# --- tasks the candidate did worse on, with why ------------------------------------------


def failure_reasons(trial: TrialScores) -> list[str]:
    """Why a scored trial failed, from its record's counts (never from free text).

    ``invalid_action:<kind>`` per kind of invalid call; ``wrong_end_state`` when nothing
    else in the record explains the failure."""
    reasons = []
    if trial.wrong_fixes:
        reasons.append("wrong_fix")
    if trial.policy_violations:
        reasons.append("policy_violation")
    kinds = [k for k, n in sorted((trial.invalid_by_kind or {}).items()) if n]
    if not kinds and trial.invalid_actions:
        kinds = ["unknown"]
    reasons.extend(f"invalid_action:{k}" for k in kinds)
    if trial.ended == "step_limit":
        reasons.append("step_limit")
    if trial.ended == "truncated" or trial.truncations:
        reasons.append("truncation")
    if trial.refusals:
        reasons.append("refusal")
    if trial.distractor_actions:
        reasons.append("distractor_action")
    if trial.ended in ("agent_exit", "agent_timeout"):  # the program failed, not the model
        reasons.insert(0, trial.ended)
    return reasons or ["wrong_end_state"]


def regressed_tasks(
    manifest: Manifest, trials: list[Trial],
    candidate: str = "candidate", baseline: str = "baseline",
) -> list[RegressedTask]:
    """Tasks whose candidate success rate is below the baseline's, worst first (ties: more
    candidate trials first), each with the candidate's failure reasons (failed trials per
    reason) and one failed trial's id."""
    if {candidate, baseline} - set(manifest.scope.arms):
        return []
    scored: dict[tuple[str, str], list[Trial]] = defaultdict(list)
    for t in trials:
        if t.status == "scored":
            scored[(t.arm, t.task)].append(t)
    out = []
    for task in manifest.scope.tasks:
        cand, base = scored.get((candidate, task), []), scored.get((baseline, task), [])
        if not cand or not base:
            continue
        c_ok, b_ok = sum(1 for t in cand if t.success), sum(1 for t in base if t.success)
        diff = _f(c_ok / len(cand) - b_ok / len(base), 4)
        if diff >= 0:
            continue
        failed = sorted((t for t in cand if not t.success), key=lambda t: t.round)
        reasons = Counter(r for t in failed for r in failure_reasons(t))
        out.append(RegressedTask(
            task=task,
            candidate=TaskFigures(successes=c_ok, trials=len(cand)),
            baseline=TaskFigures(successes=b_ok, trials=len(base)),
            difference=diff,
            reasons=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            example_trial=failed[0].trial_id if failed else None,
        ))
    # worst first; at equal difference, the task with more trials (firmer evidence) first
    return sorted(out, key=lambda r: (r.difference, -r.candidate.trials, r.task))
