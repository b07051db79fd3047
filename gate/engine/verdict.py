"""The decision of a sweep, replayed from its trials: the e-process's verdict over the planned
units, and the fixed-sample size the report compares it with."""

from __future__ import annotations

import math

from gate.engine.decision import replay
from gate.engine.plan import units_of
from gate.records import Decision, Manifest, Trial, Verdict

_VERDICTS: dict[str, Verdict] = {"regression": "regression", "no_regression": "pass",
                                 "inconclusive": "inconclusive"}


def sweep_decision(
    manifest: Manifest, trials: list[Trial], stopped: str | None
) -> tuple[Decision, Verdict | None]:
    """The decision replayed from the trials; ``stopped`` is why a sweep ended undecided."""
    from gate.statistics import fixed_sample_size

    cfg = manifest.statistics
    tasks = manifest.scope.tasks
    test, log = replay(cfg, trials, units_of(manifest.scope), manifest.slos)
    d = test.decision
    verdict = _VERDICTS.get(d.verdict)
    if verdict is None and stopped is not None:
        verdict = "inconclusive"
    sigma2, sigma2_source = _variance_of_d(test.sum_d, test.sum_d2, test.pairs)
    n_fixed = math.ceil(fixed_sample_size(cfg.delta, sigma2, cfg.alpha, cfg.beta))
    decision = Decision.model_validate({
        "verdict": d.verdict,
        "decided_round": d.rounds if d.decided and d.verdict != "inconclusive" else None,
        "rounds": d.rounds,
        "pairs": d.pairs,
        "e_reject": d.e_reject,
        "e_accept": d.e_accept,
        "threshold_reject": d.thresholds.reject,
        "threshold_accept": d.thresholds.accept,
        "score": cfg.score,
        "fixed_sample_pairs": n_fixed,
        "fixed_sample_sigma2": round(sigma2, 6),
        "fixed_sample_sigma2_source": sigma2_source,
        "fixed_sample_rounds": round(n_fixed / max(len(tasks), 1), 2),
        "rounds_log": log,
        "stopped": stopped,
    })
    return decision, verdict


# Planning variance of a paired 0/1 difference: about the share of discordant pairs, ~0.3 for
# arms ~0.1 apart (docs/statistics.md); used only until the sweep has observed its own.
PLANNING_SIGMA2 = 0.3


def _variance_of_d(sum_d: float, sum_d2: float, n: int) -> tuple[float, str]:
    """Variance of the paired differences as observed; the planning value when unobserved."""
    if n >= 2:
        mean = sum_d / n
        var = max(sum_d2 / n - mean * mean, 0.0) * n / (n - 1)
        if var > 0:
            return var, "observed"
    return PLANNING_SIGMA2, "planning value"
