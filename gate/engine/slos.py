"""Task SLOs, evaluated on the candidate arm of a sweep."""

from __future__ import annotations

from gate.config.schema import SloConfig
from gate.records import ArmSummary, SloCheck, SloReport


def evaluate_slos(slos: SloConfig, arm: ArmSummary) -> SloReport:
    """Task SLOs on the candidate arm; a missing figure is a breach (fail closed)."""
    checks: list[SloCheck] = []

    def check(name: str, value: float | None, limit: float | None, higher_ok: bool) -> None:
        if limit is None:
            return
        ok = value is not None and (value >= limit if higher_ok else value <= limit)
        checks.append(SloCheck(slo=name, value=value, limit=limit, ok=ok,
                               direction=">=" if higher_ok else "<="))

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
    return SloReport(met=all(c.ok for c in checks), checks=checks,
                     breaches=[c.slo for c in checks if not c.ok])
