"""Task SLOs, judged on the candidate's trials in the pairs the decision used.

Each SLO that is a mean of bounded per-trial (or per-attempt) figures gets an anytime-valid
confidence bound (docs/statistics.md, "SLOs"): it is **breached** only when the bound clears
the limit on the wrong side, **met** when the bound clears it on the right side, and
**unmeasured** otherwise; only a breach blocks. The bounds hold at any stopping time, so the
decision's stopping rule (which these data followed) does not bias them. ``SLO_BETA_SHARE`` of
``beta`` is set aside for them, split evenly over the bounded SLOs configured; the regression
test keeps the rest, so a candidate that truly meets its SLOs and is not worse is blocked with
probability at most ``beta`` in all.

``cost_per_success_usd`` is a ratio of an unbounded cost: it has no such bound and is judged on
the decision's pairs as a spending rule (docs/statistics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gate.config.schema import SloConfig, StatisticsConfig
from gate.engine.decision import SLO_BETA_SHARE, bounded_slos, trial_value
from gate.records import ArmSummary, AuditAttempt, SloCheck, SloReport, Trial
from gate.statistics.reliability import pass_hat_k, percentile

P95 = 0.95


def slo_level(stats: StatisticsConfig, slos: SloConfig) -> float:
    """The error level of each bounded SLO's one-sided bound."""
    return stats.beta * SLO_BETA_SHARE / max(bounded_slos(slos), 1)


class HoeffdingBound:
    """Anytime-valid lower and upper bounds on the mean of [0, 1] figures seen one at a time,
    each one-sided at ``level``: the predictable-mixture Hoeffding confidence sequence
    (docs/statistics.md, "SLOs")."""

    def __init__(self, level: float) -> None:
        self.log_inv = math.log(1.0 / level)
        self.n = 0
        self.s_lam = self.s_lam_x = self.s_lam2 = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        lam = min(math.sqrt(8.0 * self.log_inv / (self.n * math.log(self.n + 1.0))), 1.0)
        self.s_lam += lam
        self.s_lam_x += lam * x
        self.s_lam2 += lam * lam

    @property
    def bounds(self) -> tuple[float, float] | None:
        if self.n == 0:
            return None
        centre = self.s_lam_x / self.s_lam
        radius = (self.log_inv + self.s_lam2 / 8.0) / self.s_lam
        return max(0.0, centre - radius), min(1.0, centre + radius)


def hoeffding_bounds(xs: Sequence[float], level: float) -> tuple[float, float] | None:
    """``HoeffdingBound`` after ``xs``, in order. None without data."""
    bound = HoeffdingBound(level)
    for x in xs:
        bound.add(x)
    return bound.bounds


def evaluate_slos(slos: SloConfig, arm: ArmSummary, *, used: list[Trial] | None = None,
                  audit: list[AuditAttempt] | None = None,
                  stats: StatisticsConfig | None = None) -> SloReport:
    """The SLOs of the candidate. With ``used`` (its trials in the pairs the decision used,
    in the decision's order) and ``stats``, judged with anytime bounds; without, on the arm's
    point figures (a missing figure is a breach)."""
    if used is None or stats is None:
        return _point_report(slos, arm)
    level = slo_level(stats, slos)
    ids = {(t.task, t.round) for t in used}
    attempts = [a for a in audit or [] if (a.task, a.round) in ids]
    checks: list[SloCheck] = []
    successes = [trial_value(t, "success") or 0.0 for t in used]
    if slos.success_rate_min is not None:
        value = sum(successes) / len(successes) if successes else None
        checks.append(_higher("success_rate", value, slos.success_rate_min,
                              hoeffding_bounds(successes, level)))
    if slos.pass_k is not None:
        k, limit = slos.pass_k.k, slos.pass_k.min
        checks.append(_pass_k(used, successes, k, limit, level))
    if slos.p95_latency_s_max is not None:
        checks.append(_p95(used, slos.p95_latency_s_max, level))
    if slos.cost_per_success_usd_max is not None:
        cost = sum(a.cost_computed_usd for a in attempts)
        value = cost / sum(successes) if sum(successes) else None
        ok = value is not None and value <= slos.cost_per_success_usd_max
        checks.append(SloCheck(slo="cost_per_success_usd", value=value,
                               limit=slos.cost_per_success_usd_max, ok=ok, direction="<=",
                               status="met" if ok else "breached"))
    if slos.provider_error_share_max is not None:
        failed = [0.0 if a.outcome == "ok" else 1.0 for a in attempts]
        value = sum(failed) / len(failed) if failed else None
        checks.append(_lower("provider_error_share", value,
                             slos.provider_error_share_max, hoeffding_bounds(failed, level)))
    return _report(checks)


def _higher(name: str, value: float | None, limit: float,
            bounds: tuple[float, float] | None) -> SloCheck:
    """A ``>=`` SLO: breached when the upper bound is below the limit."""
    status = "unmeasured"
    if bounds is not None and bounds[1] < limit:
        status = "breached"
    elif bounds is not None and bounds[0] >= limit:
        status = "met"
    return SloCheck(slo=name, value=value, limit=limit, ok=status != "breached", direction=">=",
               status=status, bounds=bounds)


def _lower(name: str, value: float | None, limit: float,
           bounds: tuple[float, float] | None) -> SloCheck:
    """A ``<=`` SLO: breached when the lower bound is above the limit."""
    status = "unmeasured"
    if bounds is not None and bounds[0] > limit:
        status = "breached"
    elif bounds is not None and bounds[1] <= limit:
        status = "met"
    return SloCheck(slo=name, value=value, limit=limit, ok=status != "breached", direction="<=",
               status=status, bounds=bounds)


def _pass_k(used: list[Trial], successes: list[float], k: int, limit: float,
            level: float) -> SloCheck:
    """pass^k: the mean over tasks of p_t^k lies between (mean p_t)^k (Jensen) and mean p_t,
    so the success rate's bounds give bounds on it: breached when the success rate's upper
    bound is below the limit, met when its lower bound to the k is at or above it."""
    by_task: dict[str, list[bool]] = {}
    for t, s in zip(used, successes, strict=True):
        by_task.setdefault(t.task, []).append(s > 0.0)
    counted = [(len(v), sum(v)) for v in by_task.values() if len(v) >= k]
    estimate = pass_hat_k(counted, k).value if counted else None
    value = None if estimate is None else round(estimate, 4)
    rate = hoeffding_bounds(successes, level)
    bounds = None if rate is None else (rate[0] ** k, rate[1])
    return _higher(f"pass^{k}", value, limit, bounds)


def _p95(used: list[Trial], limit: float, level: float) -> SloCheck:
    """The p95 latency is at most ``limit`` exactly when at least 95 % of trials take at most
    ``limit``: the share within the limit is bounded; breached when its upper bound is below
    0.95. ``bounds`` are on that share."""
    latencies = [t.latency_s for t in used if t.status == "scored" and t.latency_s is not None]
    within = [1.0 if x <= limit else 0.0 for x in latencies]
    bounds = hoeffding_bounds(within, level)
    check = _higher("p95_latency_s", None, P95, bounds)
    value = percentile(sorted(latencies), P95) if latencies else None
    return check.model_copy(update={"value": value, "limit": limit, "direction": "<="})


def _report(checks: list[SloCheck]) -> SloReport:
    return SloReport(met=all(c.ok for c in checks), checks=checks,
                     breaches=[c.slo for c in checks if not c.ok],
                     unmeasured=[c.slo for c in checks if c.status == "unmeasured"])


def _point_report(slos: SloConfig, arm: ArmSummary) -> SloReport:
    """Point figures of the whole arm (a missing figure is a breach): runs without a
    decision."""
    checks: list[SloCheck] = []

    def check(name: str, value: float | None, limit: float | None, higher_ok: bool) -> None:
        if limit is None:
            return
        ok = value is not None and (value >= limit if higher_ok else value <= limit)
        checks.append(SloCheck(slo=name, value=value, limit=limit, ok=ok,
                               direction=">=" if higher_ok else "<=",
                               status="met" if ok else "breached"))

    check("success_rate", arm.success_rate, slos.success_rate_min, True)
    if slos.pass_k is not None:
        check(f"pass^{slos.pass_k.k}", arm.pass_k.get(str(slos.pass_k.k)), slos.pass_k.min,
              True)
    check("p95_latency_s", arm.p95_s, slos.p95_latency_s_max, False)
    check("cost_per_success_usd", arm.cost_per_success_usd, slos.cost_per_success_usd_max,
          False)
    attempts = arm.attempts
    share = arm.provider_errors.total / attempts if attempts else None
    check("provider_error_share", share, slos.provider_error_share_max, False)
    return _report(checks)
