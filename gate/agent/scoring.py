"""Per-trial score, computed from the trace and the environment's end state only."""

from __future__ import annotations

from gate.agent.loop import TrialTrace
from gate.environments.base import EnvOutcome
from gate.project.load import LoadedTask
from gate.records import TrialScores


def score_trial(trace: TrialTrace, outcome: EnvOutcome, lt: LoadedTask) -> TrialScores:
    """The scored fields of one trial record (trials.jsonl)."""
    invalid = sum(trace.invalid.values())
    parseable = trace.tool_calls - trace.invalid["unparseable"]
    correct = trace.valid_calls - trace.wrong_fixes - trace.distractor_actions
    evidence_total = len(lt.fixture.required_evidence)
    return TrialScores.model_validate({
        "environment": lt.task.environment,
        "difficulty": lt.task.difficulty,
        "success": bool(outcome.success),
        "reward": round(max(0.0, min(1.0, outcome.reward)), 6),
        "evidence_coverage": round(len(trace.evidence_seen) / evidence_total, 6),
        "invalid_actions": invalid,
        "invalid_by_kind": dict(sorted(trace.invalid.items())),
        "wrong_fixes": trace.wrong_fixes,
        "policy_violations": list(trace.policy_violations),
        "distractor_actions": trace.distractor_actions,
        "repeated_calls": trace.repeated_calls,
        "env_errors": trace.env_errors,
        "steps": trace.steps,
        "tool_calls": trace.tool_calls,
        "tool_call_accuracy": round(max(correct, 0) / trace.tool_calls, 6)
        if trace.tool_calls else None,
        "parseable_rate": round(parseable / trace.tool_calls, 6) if trace.tool_calls else None,
        "ended": trace.ended,
        "truncations": trace.truncations,
        "refusals": list(trace.refusals),
        "tokens_in": trace.tokens_in,
        "tokens_out": trace.tokens_out,
        "cost_usd": round(trace.cost_usd, 10),
        "latency_s": round(trace.latency_s, 6),
        "response_ids": list(trace.response_ids),
        "outcome_detail": outcome.detail,
        "calls": [dict(c) for c in trace.calls],
    })
