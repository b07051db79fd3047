"""gate.engine.results, function by function: each row is a set of trials and audit lines (from
tests/support/builders.py) and the figure results.json must carry for them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from builders import attempt, broken, decision, halt, lost, manifest, pair, trial

from gate.engine.results import (
    SAME_BATCH_WHY,
    TOP_UP_WHY,
    UNFINISHED_WHY,
    accounting,
    arm_summary,
    compute_results,
    evidence_of,
    failure_reasons,
    file_sha256,
    per_task,
    regressed_tasks,
    scope_accounting,
)
from gate.records import ArmSpec, AuditAttempt, Evidence, Trial, TrialScores
from gate.rundir import RunDir

ARM = ArmSpec(name="candidate", model="vendor/candidate", provider="mock",
              prompts_tools="worktree")
NO_CALL = trial(round=4, status="no_model_call")
EVIDENCE = Evidence(audit_sha256=None, trials_sha256=None, manifest_sha256=None,
                    response_ids=0, attempts=0)


def field(record: Any, path: str) -> Any:
    for name in path.split("."):
        record = getattr(record, name)
    return record


def test_file_sha256(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    assert file_sha256(tmp_path / "f") == hashlib.sha256(b"abc").hexdigest()
    assert file_sha256(tmp_path / "missing") is None


@pytest.mark.parametrize(("files", "audit", "expected"), [
    ({}, [], (None, None, None, 0, 0)),
    ({"trials.jsonl": b"t"}, [attempt(), attempt(outcome="timeout")],
     (None, hashlib.sha256(b"t").hexdigest(), None, 1, 2)),
    ({"audit.jsonl": b"a", "manifest.json": b"m"}, [attempt(), attempt(response_id="gen-2")],
     (hashlib.sha256(b"a").hexdigest(), None, hashlib.sha256(b"m").hexdigest(), 2, 2)),
], ids=["empty", "trials-only", "audit-and-manifest"])
def test_evidence_of(tmp_path: Path, files: dict[str, bytes], audit: list[AuditAttempt],
                     expected: tuple[object, ...]) -> None:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    e = evidence_of(RunDir(tmp_path), audit)
    assert (e.audit_sha256, e.trials_sha256, e.manifest_sha256, e.response_ids,
            e.attempts) == expected


@pytest.mark.parametrize(("trials", "audit", "path", "expected"), [
    ([trial(), trial(round=2, success=False)], [], "success_rate", 0.5),
    ([], [], "success_rate", None),
    ([], [], "success_interval", None),
    ([trial(), lost(round=2), broken(round=3), NO_CALL], [], "trials", 1),
    ([trial(), lost(round=2)], [], "success_rate", 1.0),  # lost trials leave the denominator
    ([trial(), broken(round=2)], [], "success_rate", 1.0),
    ([trial(), lost(round=2), lost(round=3)], [], "trials_lost_to_provider", 2),
    ([trial(), broken(round=2)], [], "environment_errors.total", 1),
    ([trial(), NO_CALL], [], "trials_not_scored", {"no_model_call": 1}),
    ([trial(success=False, reward=0.5), trial(round=2, reward=1.0)], [], "mean_reward", 0.75),
    ([trial(), trial(round=2, success=False)], [], "pass_k", {"1": 0.5, "2": 0.0}),
    ([trial(), trial(round=2), trial("candidate", "t2")], [], "pass_k", {"1": 1.0, "2": 1.0}),
    ([], [], "pass_k", {}),
    ([trial(latency_s=2.0)], [], "p50_s", 2.0),
    ([trial(latency_s=2.0)], [], "p95_s", 2.0),
    ([trial(truncations=2), trial(round=2), lost(round=3, truncations=5)], [], "truncations", 2),
    ([trial(refusals=["no", "nope"]), trial(round=2)], [], "refusals", 2),
    ([trial(tokens_in=10), trial(round=2)], [], "metrics.tokens_in", 10),
    ([trial(steps=2), trial(round=2, steps=4)], [], "metrics.mean_steps", 3.0),
    ([], [attempt(cost=0.002), attempt(cost=0.001, reused_from="run-0")], "cost_usd", 0.002),
    ([], [attempt()], "cost_reported_usd", None),
    ([], [attempt(reported=0.002), attempt(reported=0.001)], "cost_reported_usd", 0.003),
    ([], [attempt(cost=0.001, reported=0.0012), attempt(cost=0.001, reported=0.00104)],
     "cost_divergences", 1),  # 17 % apart diverges, 4 % does not
    ([], [attempt(cost=0.0, reported=0.0)], "cost_divergences", 0),
    ([], [attempt(), attempt(outcome="timeout"), attempt(outcome="server_error"),
          attempt(outcome="timeout")], "provider_errors.by_kind",
     {"server_error": 1, "timeout": 2}),
    ([], [attempt(), attempt(outcome="timeout")], "attempts", 2),
    ([], [attempt(), attempt(outcome="timeout")], "response_ids", 1),
    ([trial(), trial(round=2, success=False)], [attempt(cost=0.004)], "cost_per_success_usd",
     0.004),
    ([trial(success=False)], [attempt(cost=0.004)], "cost_per_success_usd", None),
], ids=lambda v: v if isinstance(v, str) else None)
def test_arm_summary(trials: list[Trial], audit: list[AuditAttempt], path: str,
                     expected: object) -> None:
    assert field(arm_summary(ARM, trials, audit), path) == expected


TWO_ROUNDS = manifest(["t1"], rounds=2)


def _cells(trials: list[Trial], **kw: Any) -> tuple[dict[str, int], list[tuple[str, int, str,
                                                                               str]]]:
    scope = scope_accounting(TWO_ROUNDS, trials, **{"decided_round": None, "halt": None, **kw})
    counts = {k: v for k, v in scope.counts.model_dump().items() if v}
    assert scope.planned == 4
    assert sum(counts.values()) == 4  # every planned cell ends somewhere
    return counts, [(c.arm, c.round, c.state, c.reason) for c in scope.cells_not_done]


R1 = pair("t1", 1)


@pytest.mark.parametrize(("trials", "kw", "counts", "cells"), [
    ([*R1, *pair("t1", 2)], {}, {"done": 4}, []),
    ([], {}, {"not_run": 4}, [("candidate", 1, "not_run", "not started"),
                              ("baseline", 1, "not_run", "not started"),
                              ("candidate", 2, "not_run", "not started"),
                              ("baseline", 2, "not_run", "not started")]),
    (R1, {"decided_round": 1}, {"done": 2, "not_needed": 2},
     [("candidate", 2, "not_needed", "decided at check 1"),
      ("baseline", 2, "not_needed", "decided at check 1")]),
    (R1, {"halt": halt()}, {"done": 2, "not_run": 2},
     [("candidate", 2, "not_run", "circuit_breaker: 402 payment required"),
      ("baseline", 2, "not_run", "circuit_breaker: 402 payment required")]),
    (R1, {"stopped": "the budget"}, {"done": 2, "not_run": 2},
     [("candidate", 2, "not_run", "the budget"), ("baseline", 2, "not_run", "the budget")]),
    (R1, {"decided_round": 1, "halt": halt()}, {"done": 2, "not_needed": 2},
     [("candidate", 2, "not_needed", "decided at check 1"),
      ("baseline", 2, "not_needed", "decided at check 1")]),
    ([lost("candidate", "t1", 1), trial("baseline", "t1", 1), *pair("t1", 2)], {},
     {"done": 3, "lost_to_provider": 1}, [("candidate", 1, "lost_to_provider", "server_error")]),
    ([broken("candidate", "t1", 1), trial("baseline", "t1", 1), *pair("t1", 2)], {},
     {"done": 3, "environment_error": 1},
     [("candidate", 1, "environment_error", "KeyError in call at envs/lamps.py:7")]),
    ([broken("candidate", "t1", 1, file=None), trial("baseline", "t1", 1), *pair("t1", 2)], {},
     {"done": 3, "environment_error": 1},
     [("candidate", 1, "environment_error", "KeyError in call")]),
    ([trial("candidate", "t1", 1, status="no_model_call"), trial("baseline", "t1", 1),
      *pair("t1", 2)], {}, {"done": 3, "not_scored": 1},
     [("candidate", 1, "not_scored", "no_model_call")]),
], ids=["all-done", "nothing-run", "decided", "halted", "stopped", "decided-beats-halt",
        "lost", "environment-error", "environment-error-no-file", "no-model-call"])
def test_scope_accounting(trials: list[Trial], kw: dict[str, Any], counts: dict[str, int],
                          cells: list[tuple[str, int, str, str]]) -> None:
    assert _cells(trials, **kw) == (counts, cells)


@pytest.mark.parametrize(("trials", "expected"), [
    ([], {"t1": ((0, 0, None, 0), (0, 0, None, 0), 0), "t2": ((0, 0, None, 0), (0, 0, None, 0),
                                                              0)}),
    ([*pair("t1", 1), trial("candidate", "t1", 2, success=False), lost("baseline", "t1", 2)],
     {"t1": ((2, 1, 0.5, 0), (1, 1, 1.0, 1), 1), "t2": ((0, 0, None, 0), (0, 0, None, 0), 0)}),
    ([*pair("t2", 1), *pair("t2", 2, candidate=False), broken("candidate", "t1", 1)],
     {"t1": ((0, 0, None, 0), (0, 0, None, 0), 0), "t2": ((2, 1, 0.5, 0), (2, 2, 1.0, 0), 2)}),
], ids=["nothing", "one-pair-and-a-loss", "two-pairs"])
def test_per_task(trials: list[Trial], expected: dict[str, tuple[Any, ...]]) -> None:
    rows = per_task(manifest(["t1", "t2"], rounds=2), trials)
    got = {r.task: (*[(a.trials, a.successes, a.mean_reward, a.lost) for a in r.arms.values()],
                    r.pairs) for r in rows}
    assert got == expected


def test_per_task_counts_environment_errors_and_takes_the_environment_of_a_scored_trial() -> None:
    rows = per_task(manifest(["t1"]), [broken("candidate"), trial("baseline", environment="e",
                                                                   difficulty="hard")])
    assert [(r.environment, r.difficulty, r.arms["candidate"].environment_errors) for r in rows] \
        == [("e", "hard", 1)]


def _both(trials: list[Trial]) -> list[AuditAttempt]:
    return [attempt(t.arm, t.task, t.round, response_id=f"gen-{t.trial_id}") for t in trials]


CLEAN = [*pair("t1", 1), *pair("t1", 2)]
ONE_LOST = [*pair("t1", 1), trial("candidate", "t1", 2), lost("baseline", "t1", 2)]
ARM_FAULT = [*pair("t1", 1), trial("candidate", "t1", 2),
             lost("baseline", "t1", 2, kind="bad_request")]


@pytest.mark.parametrize(("trials", "kw", "status", "verdict", "reason"), [
    (CLEAN, {}, "complete", "pass", None),
    (CLEAN, {"halt": halt()}, "halted", None, "circuit_breaker: 402 payment required at task t1"),
    (CLEAN, {"halt": halt("paused", "SIGTERM")}, "paused", None, "paused: SIGTERM"),
    (ONE_LOST, {}, "inconclusive", "inconclusive", "1 of 4 trials lost to provider errors"),
    (ONE_LOST, {"verdict": "regression"}, "inconclusive", "inconclusive", "1 of 4 trials lost"),
    (ONE_LOST, {"lost_share_inconclusive": 0.25}, "complete", "pass", None),  # at the limit
    (ARM_FAULT, {"decision": decision(rounds=2, pairs=2)}, "complete", "pass", None),
    (ARM_FAULT, {}, "inconclusive", "inconclusive", "1 of 4 trials lost to provider errors"),
    ([*pair("t1", 1), broken("candidate", "t1", 2), trial("baseline", "t1", 2)], {},
     "inconclusive", "inconclusive", "1 of 4 trials lost to environment errors"),
    ([*pair("t1", 1), trial("candidate", "t1", 2, response_ids=[]),
      trial("baseline", "t1", 2)], {}, "inconclusive", "inconclusive",
     "1 scored trial(s) without a provider response id"),
    (CLEAN, {"decision": decision(rounds=1, pairs=1, decided_round=None,
                                  verdict="inconclusive", stopped="the budget ran out")},
     "inconclusive", "inconclusive", "the budget ran out"),
], ids=["clean", "halted", "paused", "lost-share", "lost-share-regression",
        "lost-share-at-the-limit", "arm-fault-in-a-sweep", "arm-fault-in-a-run",
        "environment-errors", "scored-without-response-id", "stopped"])
def test_compute_results_status(trials: list[Trial], kw: dict[str, Any], status: str,
                                verdict: str | None, reason: str | None) -> None:
    args: dict[str, Any] = {"halt": None, "lost_share_inconclusive": 0.2, "verdict": "pass",
                            **kw}
    results = compute_results(TWO_ROUNDS, trials, _both(trials), evidence=EVIDENCE, **args)
    assert (results.status, results.verdict) == (status, verdict)
    if reason is None:
        assert results.status_reasons == []
    else:
        assert any(reason in r for r in results.status_reasons), results.status_reasons


def test_compute_results_without_a_response_id_measured_nothing() -> None:
    audit = [attempt(t.arm, t.task, t.round, response_id=None) for t in CLEAN]
    results = compute_results(TWO_ROUNDS, CLEAN, audit, halt=None, lost_share_inconclusive=0.2,
                              evidence=EVIDENCE, verdict="pass")
    assert (results.status, results.verdict) == ("inconclusive", "inconclusive")
    assert "no provider response id in the audit log: nothing was measured" \
        in results.status_reasons


def test_compute_results_carries_its_parts() -> None:
    trials = [*pair("t1", 1, candidate=False), *pair("t1", 2)]
    results = compute_results(TWO_ROUNDS, trials, _both(trials), halt=None,
                              lost_share_inconclusive=0.2, evidence=EVIDENCE,
                              decision=decision(rounds=2, pairs=2, decided_round=2))
    assert (results.run_id, results.kind, results.evidence) == ("run-1", "sweep", EVIDENCE)
    assert set(results.arms) == {"candidate", "baseline"}
    assert results.arms["candidate"].successes == 1
    assert results.scope.counts.done == 4
    assert [t.task for t in results.regressed_tasks] == ["t1"]
    assert results.accounting is not None
    assert results.accounting.decision_pairs == 2


THREE = manifest(["t1"], rounds=3)


def _costs(trials: list[Trial], extra: tuple[AuditAttempt, ...] = ()) -> list[AuditAttempt]:
    return [attempt(t.arm, t.task, t.round, cost=0.001) for t in trials] + list(extra)


def _arm(trials: list[Trial], d: Any, extra: tuple[AuditAttempt, ...] = (),
         arm: str = "candidate") -> dict[str, Any]:
    acc = accounting(THREE, trials, _costs(trials, extra), d)
    assert acc is not None
    return {k: v for k, v in acc.arms[arm].model_dump().items() if v}


@pytest.mark.parametrize(("trials", "d", "arm", "expected"), [
    ([*pair("t1", 1), *pair("t1", 2)], decision(rounds=1, pairs=1), "candidate",
     {"trials_on_disk": 2, "used_by_decision": 1, "after_decision": 1,
      "cost_decision_usd": 0.001, "cost_after_decision_usd": 0.001}),
    ([trial("candidate", "t1", 1), lost("baseline", "t1", 1), *pair("t1", 2)],
     decision(rounds=2, pairs=1, decided_round=2), "candidate",
     {"trials_on_disk": 2, "used_by_decision": 1, "unpaired": 1, "cost_decision_usd": 0.002}),
    ([trial("candidate", "t1", 1), lost("baseline", "t1", 1), *pair("t1", 2)],
     decision(rounds=2, pairs=1, decided_round=2), "baseline",
     {"trials_on_disk": 2, "used_by_decision": 1, "lost_to_provider": 1,
      "cost_decision_usd": 0.002}),
    ([broken("candidate", "t1", 1), trial("baseline", "t1", 1), *pair("t1", 2)],
     decision(rounds=2, pairs=1, decided_round=2), "candidate",
     {"trials_on_disk": 2, "used_by_decision": 1, "environment_errors": 1,
      "cost_decision_usd": 0.002}),
    ([*pair("t1", 1), trial("candidate", "t1", 9)], decision(rounds=1, pairs=1), "candidate",
     {"trials_on_disk": 2, "used_by_decision": 1, "outside_plan": 1,
      "cost_decision_usd": 0.001, "cost_other_usd": 0.001}),
], ids=["used-and-after", "unpaired", "lost-in-the-span", "environment-error-in-the-span",
        "outside-the-plan"])
def test_accounting_per_arm(trials: list[Trial], d: Any, arm: str,
                            expected: dict[str, Any]) -> None:
    assert _arm(trials, d, arm=arm) == expected


def test_accounting_counts_calls_without_a_trial_line_as_other() -> None:
    got = _arm(pair("t1", 1), decision(rounds=1, pairs=1), (attempt("candidate", "t1", 2),))
    assert got == {"trials_on_disk": 1, "used_by_decision": 1, "cost_decision_usd": 0.001,
                   "cost_other_usd": 0.001}


@pytest.mark.parametrize(("trials", "d", "why", "after"), [
    (pair("t1", 1), None, None, None),
    (pair("t1", 1), decision(rounds=1, pairs=1), None, 0),
    ([*pair("t1", 1), *pair("t1", 2)], decision(rounds=1, pairs=1), TOP_UP_WHY, 2),
    ([*pair("t1", 1), *pair("t1", 2)], decision(rounds=1, pairs=1, decided_round=None),
     UNFINISHED_WHY, 2),
], ids=["no-decision", "nothing-after", "top-up", "unfinished"])
def test_accounting_after_the_decision(trials: list[Trial], d: Any, why: str | None,
                                       after: int | None) -> None:
    acc = accounting(THREE, trials, _costs(trials), d)
    if d is None:
        assert acc is None
        return
    assert acc is not None
    assert (acc.after_decision_why, acc.after_decision_trials) == (why, after)


def test_accounting_names_the_batch_of_a_decision_taken_inside_it() -> None:
    iid = manifest(["t1", "t2"], rounds=2, schedule="iid", batch=4)  # one batch of 4 draws
    ids = [(i, t) for i, t, _b in iid.scope.units]
    trials = [x for i, t in ids for x in pair(t, i)]
    acc = accounting(iid, trials, [], decision(rounds=1, pairs=1))
    assert acc is not None
    assert acc.after_decision_why == SAME_BATCH_WHY.format(batch=4)
    assert acc.after_decision_trials == 6


def scores(**fields: Any) -> TrialScores:
    return TrialScores(**fields)


@pytest.mark.parametrize(("t", "expected"), [
    (scores(), ["wrong_end_state"]),
    (scores(wrong_fixes=1), ["wrong_fix"]),
    (scores(wrong_fixes=0, invalid_actions=0, refusals=[]), ["wrong_end_state"]),
    (scores(policy_violations=["refund_over_limit"]), ["policy_violation"]),
    (scores(invalid_actions=2, invalid_by_kind={"unknown_tool": 1, "bad_args": 1,
                                                "schema": 0}),
     ["invalid_action:bad_args", "invalid_action:unknown_tool"]),
    (scores(invalid_actions=2), ["invalid_action:unknown"]),
    (scores(ended="step_limit"), ["step_limit"]),
    (scores(ended="truncated"), ["truncation"]),
    (scores(truncations=1), ["truncation"]),
    (scores(refusals=["I can't"]), ["refusal"]),
    (scores(distractor_actions=3), ["distractor_action"]),
    (scores(ended="agent_exit", wrong_fixes=1), ["agent_exit", "wrong_fix"]),
    (scores(ended="agent_timeout"), ["agent_timeout"]),
    (scores(wrong_fixes=1, policy_violations=["p"], invalid_actions=1, ended="step_limit",
            truncations=1, refusals=["r"], distractor_actions=1),
     ["wrong_fix", "policy_violation", "invalid_action:unknown", "step_limit", "truncation",
      "refusal", "distractor_action"]),
], ids=["nothing-said", "wrong-fix", "zeros", "policy", "invalid-by-kind", "invalid-unknown",
        "step-limit", "ended-truncated", "truncations", "refusal", "distractor", "agent-exit",
        "agent-timeout", "everything-in-order"])
def test_failure_reasons(t: TrialScores, expected: list[str]) -> None:
    assert failure_reasons(t) == expected


@pytest.mark.parametrize(("trials", "tasks", "expected"), [
    ([*pair("t1", 1), *pair("t1", 2)], ["t1"], []),
    ([*pair("t1", 1, candidate=False), *pair("t1", 2)], ["t1"],
     [("t1", 1, 2, 2, 2, -0.5, {"wrong_end_state": 1}, "candidate/t1/r1")]),
    ([*pair("t1", 1, candidate=False, baseline=False)], ["t1"], []),  # equal: not regressed
    ([*pair("t1", 1, baseline=False)], ["t1"], []),  # better
    # worst first, then the task with more candidate trials, then the name
    ([*pair("a", 1, candidate=False), *pair("b", 1, candidate=False),
      *pair("b", 2, candidate=False), *pair("c", 1), *pair("c", 2, candidate=False)],
     ["a", "b", "c"],
     [("b", 0, 2, 2, 2, -1.0, {"wrong_end_state": 2}, "candidate/b/r1"),
      ("a", 0, 1, 1, 1, -1.0, {"wrong_end_state": 1}, "candidate/a/r1"),
      ("c", 1, 2, 2, 2, -0.5, {"wrong_end_state": 1}, "candidate/c/r2")]),
    # a task one arm never scored is left out
    ([trial("candidate", "t1", success=False), lost("baseline", "t1")], ["t1"], []),
    # reasons counted over the failed trials, most frequent first
    ([trial("candidate", "t1", 1, success=False, wrong_fixes=1, refusals=["r"]),
      trial("candidate", "t1", 2, success=False, refusals=["r"]),
      trial("baseline", "t1", 1), trial("baseline", "t1", 2)], ["t1"],
     [("t1", 0, 2, 2, 2, -1.0, {"refusal": 2, "wrong_fix": 1}, "candidate/t1/r1")]),
], ids=["none", "half-worse", "equal", "better", "ordered", "unpaired-task", "reasons"])
def test_regressed_tasks(trials: list[Trial], tasks: list[str],
                         expected: list[tuple[Any, ...]]) -> None:
    rows = regressed_tasks(manifest(tasks, rounds=2), trials)
    assert [(r.task, r.candidate.successes, r.candidate.trials, r.baseline.successes,
             r.baseline.trials, r.difference, r.reasons, r.example_trial) for r in rows] \
        == expected


def test_regressed_tasks_needs_both_arms_in_the_scope() -> None:
    run = manifest(["t1"], arms=["run"], kind="run")
    assert regressed_tasks(run, [trial("run", success=False)]) == []
