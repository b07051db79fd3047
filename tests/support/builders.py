"""Builders of the records a run directory holds: trials (trials.jsonl), audit lines
(audit.jsonl) and manifests (manifest.json), with every required field filled, so that a test
names only what it is about (not a test module).

    trial("candidate", "t1", 2, success=False)        # a scored failure, round 2
    lost("baseline", "t1", 1, kind="server_error")    # lost to the provider after retries
    attempt("candidate", "t1", 1, cost=0.002)         # one ok provider attempt
    manifest(["t1", "t2"], rounds=3)                  # a sweep, rounds schedule, batch = round
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gate.config.schema import RunConfig, SloConfig, StatisticsConfig
from gate.engine.decision import DECISION_METHOD
from gate.engine.plan import Unit, plan_units
from gate.records import (
    ArmSpec,
    AuditAttempt,
    BudgetSnapshot,
    Decision,
    HaltRecord,
    Manifest,
    PlannedScope,
    Trial,
    TrialEnvironmentError,
    TrialProviderError,
)

SHA = "0" * 64
ARMS = ("candidate", "baseline")


def trial(arm: str = "candidate", task: str = "t1", round: int = 1, *,
          success: bool | None = True, reward: float | None = None,
          status: str = "scored", **fields: Any) -> Trial:
    """A finished trial; scored (with one response id) unless ``status`` says otherwise.
    ``reward`` defaults to 1.0 for a success and 0.0 for a failure."""
    scored = status == "scored"
    base: dict[str, Any] = {
        "trial_id": f"{arm}/{task}/r{round}", "arm": arm, "model": f"vendor/{arm}",
        "task": task, "round": round, "seed": round, "ts": "2026-01-01T00:00:00Z",
        "wall_s": 1.0, "status": status, "trace_id": "0" * 32,
        "success": success if scored else None,
        "reward": (reward if reward is not None else float(bool(success))) if scored else None,
        "latency_s": 1.0 if scored else None,
        "response_ids": [f"gen-{arm}-{task}-{round}"] if scored else [],
    }
    return Trial(**{**base, **fields})


def lost(arm: str = "candidate", task: str = "t1", round: int = 1, *,
         kind: str = "server_error", **fields: Any) -> Trial:
    """A trial lost to the provider after its retries (``kind``: an ErrorKind value)."""
    return trial(arm, task, round, status="provider_error",
                 provider_error=TrialProviderError(kind=kind, message=kind), **fields)


def broken(arm: str = "candidate", task: str = "t1", round: int = 1, *,
           file: str | None = "envs/lamps.py", line: int | None = 7, **fields: Any) -> Trial:
    """A trial lost to an exception of the environment's own code (the harness's fault)."""
    error = TrialEnvironmentError(environment="lamps", phase="call", type="KeyError",
                                  message="'x'", file=file, line=line)
    return trial(arm, task, round, status="environment_error", environment_error=error,
                 **fields)


def pair(task: str = "t1", round: int = 1, *, candidate: bool = True,
         baseline: bool = True) -> list[Trial]:
    """Both arms' scored trials of one unit, with the given successes."""
    return [trial("candidate", task, round, success=candidate),
            trial("baseline", task, round, success=baseline)]


def attempt(arm: str = "candidate", task: str = "t1", round: int = 1, *,
            outcome: str = "ok", cost: float = 0.001, reported: float | None = None,
            response_id: str | None = "gen-1", **fields: Any) -> AuditAttempt:
    """One provider attempt of audit.jsonl (an ``ok`` one unless ``outcome`` says otherwise;
    a failed attempt has no response id)."""
    ok = outcome == "ok"
    base: dict[str, Any] = {
        "ts": "2026-01-01T00:00:00Z", "arm": arm, "model": f"vendor/{arm}", "task": task,
        "round": round, "step": 1, "attempt": 1, "request_sha256": SHA, "outcome": outcome,
        "http_status": 200 if ok else 500, "response_id": response_id if ok else None,
        "tokens_in": 10, "tokens_out": 5, "cost_reported_usd": reported,
        "cost_computed_usd": cost, "latency_s": 0.5,
    }
    return AuditAttempt(**{**base, **fields})


def units(tasks: Sequence[str] = ("t1",), rounds: int = 1, *, schedule: str = "rounds",
          batch: int = 4, salt: str = "0") -> list[Unit]:
    """The plan a sweep of these tasks draws (``gate.engine.plan.plan_units``)."""
    return plan_units(schedule, list(tasks), rounds, salt, batch)


def manifest(tasks: Sequence[str] = ("t1",), rounds: int = 1, *,
             arms: Sequence[str] = ARMS, kind: str = "sweep", schedule: str = "rounds",
             batch: int = 4, score: str = "success",
             slos: SloConfig | None = None, **fields: Any) -> Manifest:
    """manifest.json of a run over ``tasks`` for ``rounds`` rounds (or draws per task under
    ``iid``), with the plan recorded in its scope the way a sweep records it."""
    plan = units(tasks, rounds, schedule=schedule, batch=batch)
    stats = StatisticsConfig(max_rounds=rounds, schedule=schedule,  # type: ignore[arg-type]
                             batch=batch, score=score)  # type: ignore[arg-type]
    base: dict[str, Any] = {
        "run_id": "run-1", "kind": kind, "gate_version": "0", "git_sha": None,
        "created": "2026-01-01T00:00:00Z", "command": [kind], "config_path": "gate.yaml",
        "config_sha256": SHA, "files_sha256": {},
        "arms": [ArmSpec(name=a, model=f"vendor/{a}", provider="mock", prompts_tools="worktree")
                 for a in arms],
        "scope": PlannedScope(schedule=schedule, arms=list(arms),  # type: ignore[arg-type]
                              tasks=list(tasks), max_rounds=rounds,
                              units=[(u.index, u.task, u.batch) for u in plan],
                              cells=len(arms) * len(plan)),
        "seed": 1, "statistics": stats, "slos": slos or SloConfig(), "run": RunConfig(),
        "budget": BudgetSnapshot(ceiling_usd=5.0, configured_usd=5.0,
                                 provider_remaining_usd=None, source="config", spent_usd=0.0),
        "decision_method": DECISION_METHOD,
    }
    return Manifest(**{**base, **fields})


def halt(kind: str = "circuit_breaker", reason: str = "402 payment required",
         task: str = "t1", round: int = 1) -> HaltRecord:
    return HaltRecord(kind=kind, reason=reason, task=task, round=round)  # type: ignore[arg-type]


def decision(*, rounds: int = 1, pairs: int = 1, decided_round: int | None = 1,
             verdict: str = "no_regression", stopped: str | None = None) -> Decision:
    """A sweep's decision record with the figures a test names; the rest neutral."""
    return Decision(
        verdict=verdict, decided_round=decided_round, rounds=rounds,  # type: ignore[arg-type]
        pairs=pairs, e_reject=1.0, e_accept=1.0, threshold_reject=20.0, threshold_accept=20.0,
        score="success", fixed_sample_pairs=0, fixed_sample_sigma2=0.25,
        fixed_sample_sigma2_source="planning value", fixed_sample_rounds=0.0, rounds_log=[],
        stopped=stopped)
