"""The console summary of a run's results (stdout), one line per arm."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO, TypeVar

from gate.records import Results

K = TypeVar("K", bound=str)


def counts_text(counts: Mapping[K, int], empty: str = "none") -> str:
    """``{"done": 32, "not_run": 0}`` as ``32 done`` for people: non-zero counts only."""
    parts = [f"{n} {name.replace('_', ' ')}" for name, n in counts.items() if n]
    return ", ".join(parts) or empty


def value_text(value: float | None) -> str:
    """A figure for people: ``n/a`` where there is none, never ``None``."""
    return "n/a" if value is None else f"{value:.6g}"


def pass_k_text(pass_k: Mapping[str, float | None]) -> str:
    return ", ".join(f"k={k}: {value_text(v)}" for k, v in pass_k.items()) or "n/a"


def print_arm_summary(results: Results, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for name, a in results.arms.items():
        rate = "n/a" if a.success_rate is None else f"{a.success_rate:.1%}"
        cps = "n/a" if a.cost_per_success_usd is None else f"${a.cost_per_success_usd:.6f}"
        pe = a.provider_errors
        kinds = f" ({counts_text(pe.by_kind)})" if pe.total else ""
        print(f"{name} ({a.model}): {a.successes}/{a.trials} succeeded ({rate}); "
              f"pass^k {pass_k_text(a.pass_k)}; provider errors {pe.total}{kinds}; "
              f"trials lost {a.trials_lost_to_provider}; "
              f"environment errors {a.environment_errors.total}; cost ${a.cost_usd:.6f}; "
              f"cost/success {cps}", file=out)
    scope = results.scope
    print(f"status: {results.status}; scope: {counts_text(scope.counts.model_dump())} of "
          f"{scope.planned} cells; response ids: {results.evidence.response_ids}", file=out)
    for reason in results.status_reasons:
        print(f"  - {reason}", file=out)
    if results.subset is not None:
        print(f"note: this run covered {results.subset.describe()}, not the whole suite",
              file=out)
