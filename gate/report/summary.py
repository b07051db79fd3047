"""The console summary of a run's results (stdout), one line per arm."""

from __future__ import annotations

import sys
from typing import TextIO

from gate.records import Results


def print_arm_summary(results: Results, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for name, a in results.arms.items():
        rate = "n/a" if a.success_rate is None else f"{a.success_rate:.1%}"
        cps = "n/a" if a.cost_per_success_usd is None else f"${a.cost_per_success_usd:.6f}"
        pe = a.provider_errors
        print(f"{name} ({a.model}): {a.successes}/{a.trials} succeeded ({rate}); "
              f"pass^k {a.pass_k}; provider errors {pe.total} {pe.by_kind}; "
              f"trials lost {a.trials_lost_to_provider}; "
              f"environment errors {a.environment_errors.total}; cost ${a.cost_usd:.6f}; "
              f"cost/success {cps}", file=out)
    scope = results.scope
    print(f"status: {results.status}; scope: {scope.counts.model_dump()} of {scope.planned} "
          f"cells; response ids: {results.evidence.response_ids}", file=out)
    for reason in results.status_reasons:
        print(f"  - {reason}", file=out)
