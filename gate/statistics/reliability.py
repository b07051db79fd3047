"""Reliability figures of one arm: pass^k, pass@k, binomial intervals and latency percentiles.

- pass^k (tau-bench; Yao et al. 2024): the chance that k i.i.d. trials of a task *all* succeed,
  estimated without bias per task by C(c_t, k) / C(n_t, k) and averaged over tasks. The plug-in
  (c/n)^k is biased upward (n 8, c 6, k 4: 0.316 against the unbiased 0.2143). Tasks with
  n_t < k trials cannot be estimated: they are excluded and counted.
- pass@k (Chen et al. 2021): 1 - C(n - c, k) / C(n, k), the chance that at least one of k succeeds.
- Wilson score interval (Wilson 1927) and the exact Clopper-Pearson interval (1934), which uses
  Beta quantiles: lower = B^-1(a/2; x, n - x + 1), upper = B^-1(1 - a/2; x + 1, n - x).
  Both are fixed-n intervals: when stopping on the data, use the e-process instead.
- Percentiles: "linear" interpolation between order statistics (Hyndman and Fan type 7, the
  numpy default: h = (N - 1) q) or "nearest" rank (the smallest x with at least q N values <= x).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from gate.statistics.special import betainc_inv, norm_ppf

__all__ = [
    "PassK",
    "clopper_pearson_interval",
    "pass_at_k",
    "pass_hat_k",
    "pass_hat_k_curve",
    "percentile",
    "wilson_interval",
]


@dataclass(frozen=True)
class PassK:
    """pass^k over a suite; ``value`` is None when no task has k or more trials."""

    k: int
    value: float | None
    tasks_used: int
    tasks_excluded: int


def _check_counts(n: int, c: int) -> None:
    if n < 0 or not 0 <= c <= n:
        raise ValueError(f"need 0 <= successes <= trials, got {c}/{n}")


def pass_hat_k(per_task: Iterable[tuple[int, int]], k: int) -> PassK:
    """Unbiased pass^k: mean over tasks of C(c_t, k) / C(n_t, k); ``per_task`` = (n_t, c_t)."""
    if k < 1:
        raise ValueError("k must be >= 1")
    total, used, excluded = 0.0, 0, 0
    for n, c in per_task:
        _check_counts(n, c)
        if n < k:
            excluded += 1
            continue
        total += math.comb(c, k) / math.comb(n, k)
        used += 1
    return PassK(
        k=k, value=total / used if used else None, tasks_used=used, tasks_excluded=excluded
    )


def pass_hat_k_curve(per_task: Sequence[tuple[int, int]], k_max: int) -> list[PassK]:
    """pass^1 .. pass^k_max (non-increasing in k on a common set of tasks)."""
    return [pass_hat_k(per_task, k) for k in range(1, k_max + 1)]


def pass_at_k(n: int, c: int, k: int) -> float:
    """pass@k = 1 - C(n - c, k) / C(n, k) for c successes in n trials, 1 <= k <= n."""
    _check_counts(n, c)
    if not 1 <= k <= n:
        raise ValueError("need 1 <= k <= n")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    return norm_ppf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval: (p + z^2/2n -+ z sqrt(p q / n + z^2 / 4n^2)) / (1 + z^2 / n)."""
    _check_counts(n, successes)
    if n == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / (1.0 + z2n)
    lower = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the edges
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return lower, upper


def clopper_pearson_interval(
    successes: int, n: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval from Beta quantiles (own incomplete beta)."""
    _check_counts(n, successes)
    if n == 0:
        return 0.0, 1.0
    a = 1.0 - confidence
    if not 0.0 < a < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    x = successes
    lower = 0.0 if x == 0 else betainc_inv(x, n - x + 1, a / 2.0)
    upper = 1.0 if x == n else betainc_inv(x + 1, n - x, 1.0 - a / 2.0)
    return lower, upper


def percentile(
    values: Iterable[float], q: float, method: Literal["linear", "nearest"] = "linear"
) -> float:
    """The q-quantile (0 <= q <= 1) of ``values`` (see the module docstring for the methods)."""
    xs = sorted(values)
    if not xs:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be in [0, 1]")
    if method == "nearest":
        return xs[max(math.ceil(q * len(xs) - 1e-12), 1) - 1]
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])
