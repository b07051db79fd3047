"""Design calculations for the benchmarks: Wald's SPRT, group-sequential constants, sizing.

Research code the product does not use (``bench/sequential.py`` and its tests do); the product's
one sizing formula, ``fixed_sample_size``, lives in ``gate.statistics.sizing``.

Formulas and sources:
- Paired fixed-sample size (one-sided, power 1 - beta at the design alternative):
  n = (z_{1-alpha} + z_{1-beta})^2 sigma^2 / delta^2 (docs/statistics.md); the round
  limit a sequential sweep should allow is about 2 n / T rounds of T tasks.
- Optimal betting needs about 2 ln(1/alpha) (sigma^2 + delta^2) / delta^2 trials.
- Wald's SPRT for a Bernoulli p0 vs p1: log-likelihood-ratio bounds a = ln(beta / (1 - alpha))
  and b = ln((1 - beta) / alpha); Wald's approximate average sample numbers
  ASN_0 = ((1 - alpha) a + alpha b) / E_0[z], ASN_1 = (beta a + (1 - beta) b) / E_1[z]
  (Wald 1947, ignoring overshoot, hence below Monte Carlo figures).
- One-sample one-sided fixed n: ((z_{1-alpha} sqrt(p0 q0) + z_{1-beta} sqrt(p1 q1)) / |p0 - p1|)^2.
- Group sequential, K equally spaced looks, two-sided level alpha: the Pocock constant c with
  bounds |Z_k| >= c and the O'Brien-Fleming constant with |Z_k| >= c sqrt(K / k), solved from the
  exit probability computed by the recursive numerical integration of Armitage, McPherson and
  Rowe (1969) on a Simpson grid (Jennison and Turnbull 2000, ch. 19).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gate.statistics.sizing import fixed_sample_size
from gate.statistics.special import norm_cdf, norm_ppf

__all__ = [
    "SequentialPlan",
    "SprtDesign",
    "exit_probability",
    "fixed_design_rounds",
    "fixed_sample_size",
    "kelly_lam",
    "obrien_fleming_bounds",
    "obrien_fleming_constant",
    "one_sample_fixed_n",
    "optimal_betting_pairs",
    "plan_sweep",
    "pocock_constant",
    "round_limit",
    "sprt_bernoulli",
    "sprt_simulate",
]


def optimal_betting_pairs(delta: float, sigma2: float, alpha: float) -> float:
    """Trials an optimally betting e-process needs: 2 ln(1/alpha) (sigma^2 + delta^2) / delta^2."""
    return 2.0 * math.log(1.0 / alpha) * (sigma2 + delta * delta) / (delta * delta)


def kelly_lam(delta: float, sigma2: float) -> float:
    """Growth-optimal bet at the design alternative: delta / (sigma^2 + delta^2)."""
    return delta / (sigma2 + delta * delta)


def fixed_design_rounds(n_pairs: float, n_tasks: int) -> int:
    """Whole rounds of T tasks a fixed-sample design of n paired trials needs: ceil(n / T)."""
    return max(1, math.ceil(n_pairs / n_tasks - 1e-9))


def round_limit(n_pairs: float, n_tasks: int, factor: float = 2.0) -> int:
    """Suggested sequential round limit: ceil(factor * n / T), about 2 n / T."""
    return max(1, math.ceil(factor * n_pairs / n_tasks - 1e-9))


@dataclass(frozen=True)
class SequentialPlan:
    """What the report prints about the design of a sweep."""

    n_fixed: float  # paired trials of the fixed-sample design with the same errors
    fixed_rounds: int  # the rounds that design would need
    round_limit: int  # suggested max_rounds (about 2 n / T)
    lam: float  # growth-optimal bet for sigma^2
    optimal_pairs: float  # expected trials of an optimally betting test


def plan_sweep(
    delta: float, alpha: float, beta: float, sigma2: float, n_tasks: int
) -> SequentialPlan:
    """Sizing of a sweep of ``n_tasks`` tasks for a per-trial variance ``sigma2`` of D.

    sigma2 ~ the discordance rate for binary scores (about 0.3 for agents near 50 % success).
    """
    n = fixed_sample_size(delta, sigma2, alpha, beta)
    return SequentialPlan(
        n_fixed=n,
        fixed_rounds=fixed_design_rounds(n, n_tasks),
        round_limit=round_limit(n, n_tasks),
        lam=kelly_lam(delta, sigma2),
        optimal_pairs=optimal_betting_pairs(delta, sigma2, min(alpha, beta)),
    )


@dataclass(frozen=True)
class SprtDesign:
    """Wald's SPRT of H0: p = p0 against H1: p = p1 on Bernoulli observations."""

    p0: float
    p1: float
    alpha: float
    beta: float
    lower: float  # ln(beta / (1 - alpha)): accept H0 at or below
    upper: float  # ln((1 - beta) / alpha): accept H1 at or above
    step_success: float  # ln(p1 / p0)
    step_failure: float  # ln((1 - p1) / (1 - p0))

    def drift(self, p: float) -> float:
        """E_p of the per-observation log-likelihood ratio."""
        return p * self.step_success + (1.0 - p) * self.step_failure

    @property
    def asn_h0(self) -> float:
        """Wald's approximate average sample number under H0."""
        a, b = self.lower, self.upper
        return ((1.0 - self.alpha) * a + self.alpha * b) / self.drift(self.p0)

    @property
    def asn_h1(self) -> float:
        """Wald's approximate average sample number under H1."""
        a, b = self.lower, self.upper
        return (self.beta * a + (1.0 - self.beta) * b) / self.drift(self.p1)


def sprt_bernoulli(p0: float, p1: float, alpha: float, beta: float) -> SprtDesign:
    """Wald's boundaries for p0 vs p1 (golden: 0.80 vs 0.70, 0.05, 0.20 -> ASN 52.1 / 67.7)."""
    if not (0.0 < p0 < 1.0 and 0.0 < p1 < 1.0 and p0 != p1):
        raise ValueError("need 0 < p0, p1 < 1 and p0 != p1")
    return SprtDesign(
        p0=p0,
        p1=p1,
        alpha=alpha,
        beta=beta,
        lower=math.log(beta / (1.0 - alpha)),
        upper=math.log((1.0 - beta) / alpha),
        step_success=math.log(p1 / p0),
        step_failure=math.log((1.0 - p1) / (1.0 - p0)),
    )


def sprt_simulate(
    design: SprtDesign, p_true: float, n_sims: int, seed: int, max_n: int = 100_000
) -> tuple[float, float]:
    """Monte Carlo (mean sample number, share of runs accepting H1) at success rate p_true."""
    rng = random.Random(seed)
    rand, lo, hi = rng.random, design.lower, design.upper
    s_ok, s_fail = design.step_success, design.step_failure
    total_n = accepted_h1 = 0
    for _ in range(n_sims):
        llr, n = 0.0, 0
        while lo < llr < hi and n < max_n:
            llr += s_ok if rand() < p_true else s_fail
            n += 1
        total_n += n
        accepted_h1 += llr >= hi
    return total_n / n_sims, accepted_h1 / n_sims


def one_sample_fixed_n(p0: float, p1: float, alpha: float, beta: float) -> int:
    """One-sided one-sample binomial test size (normal approximation), rounded up."""
    za, zb = norm_ppf(1.0 - alpha), norm_ppf(1.0 - beta)
    root = (za * math.sqrt(p0 * (1 - p0)) + zb * math.sqrt(p1 * (1 - p1))) / abs(p0 - p1)
    return math.ceil(root * root - 1e-9)


def _simpson(lo: float, hi: float, m: int) -> tuple[list[float], list[float]]:
    """Grid points and Simpson weights on [lo, hi] with m (odd) points."""
    h = (hi - lo) / (m - 1)
    xs = [lo + i * h for i in range(m)]
    ws = [(h / 3.0) * (1.0 if i in (0, m - 1) else (4.0 if i % 2 else 2.0)) for i in range(m)]
    return xs, ws


def exit_probability(s_bounds: Sequence[float], m: int = 101) -> float:
    """P(|S_k| >= s_bounds[k-1] for some k) for S_k a sum of k i.i.d. N(0, 1).

    Recursive integration (Armitage, McPherson and Rowe): the sub-density of S_k on the
    continuation region is f_k(s) = int f_{k-1}(u) phi(s - u) du, and the exit probability at
    look k is int f_{k-1}(u) [Phi(-b_k - u) + Phi(u - b_k)] du. ``m`` grid points per look.
    """
    inv_sqrt2pi = 1.0 / math.sqrt(2.0 * math.pi)
    exp, cdf = math.exp, norm_cdf
    b = s_bounds[0]
    total = 2.0 * cdf(-b)
    xs, ws = _simpson(-b, b, m)
    wf = [w * inv_sqrt2pi * exp(-0.5 * x * x) for x, w in zip(xs, ws, strict=True)]
    for k in range(1, len(s_bounds)):
        b = s_bounds[k]
        total += sum(g * (cdf(-b - u) + cdf(u - b)) for u, g in zip(xs, wf, strict=True))
        if k + 1 < len(s_bounds):
            xs, wf = _convolve(xs, wf, b, m)
    return total


def _convolve(
    xs: list[float], wf: list[float], b: float, m: int
) -> tuple[list[float], list[float]]:
    """Next look's weighted sub-density on [-b, b]: w_j * sum_i wf_i phi(s_j - u_i)."""
    exp, inv_sqrt2pi = math.exp, 1.0 / math.sqrt(2.0 * math.pi)
    new_xs, new_ws = _simpson(-b, b, m)
    new_wf = [
        w * inv_sqrt2pi * sum(g * exp(-0.5 * (s - u) ** 2) for u, g in zip(xs, wf, strict=True))
        for s, w in zip(new_xs, new_ws, strict=True)
    ]
    return new_xs, new_wf


def _solve(f: Callable[[float], float], lo: float, hi: float, tol: float = 1e-7) -> float:
    """Root of an increasing-or-decreasing f on [lo, hi] by the Illinois (regula falsi) method."""
    f_lo, f_hi = f(lo), f(hi)
    if f_lo * f_hi > 0.0:
        raise ValueError("root not bracketed")
    side = 0
    for _ in range(100):
        x = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        fx = f(x)
        if abs(fx) < 1e-12 or hi - lo < tol:
            return x
        if fx * f_hi > 0.0:
            hi, f_hi = x, fx
            if side == -1:
                f_lo /= 2.0
            side = -1
        else:
            lo, f_lo = x, fx
            if side == 1:
                f_hi /= 2.0
            side = 1
    return x


def pocock_constant(k_looks: int, alpha: float = 0.05, m: int = 101) -> float:
    """Pocock's c: |Z_k| >= c at each of K equally spaced looks (K 5, 0.05 -> 2.413)."""
    roots = [math.sqrt(k) for k in range(1, k_looks + 1)]
    return _solve(lambda c: exit_probability([c * r for r in roots], m) - alpha, 1.0, 6.0)


def obrien_fleming_constant(k_looks: int, alpha: float = 0.05, m: int = 101) -> float:
    """O'Brien-Fleming's c: |Z_k| >= c sqrt(K / k), i.e. |S_k| >= c sqrt(K) (K 5 -> 2.040)."""
    root_k = math.sqrt(k_looks)
    return _solve(lambda c: exit_probability([c * root_k] * k_looks, m) - alpha, 1.0, 6.0)


def obrien_fleming_bounds(k_looks: int, alpha: float = 0.05, m: int = 101) -> list[float]:
    """O'Brien-Fleming Z bounds c sqrt(K / k), k = 1..K (4.562 / 3.226 / 2.634 / 2.281 / 2.040)."""
    c = obrien_fleming_constant(k_looks, alpha, m)
    return [c * math.sqrt(k_looks / k) for k in range(1, k_looks + 1)]
