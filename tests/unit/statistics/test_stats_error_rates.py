"""Error rates and power of the sequential test by seeded simulation of whole sweeps.

Boundary nulls (docs/statistics.md): at true suite-mean difference -delta the rate of
"no_regression" must stay <= alpha, at 0 the rate of "regression" <= beta; quick test at N 2,000
per null with the bound alpha + 3 sqrt(alpha (1 - alpha) / N) = 0.065. Suites have tasks of mixed
difficulty (baseline success spread over [0.05, 0.95]) and heterogeneous per-task effects.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from bench.simulate import SimOptions, make_suite, simulate_many, simulate_sweep
from gate.statistics import PairedSequentialTest

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it

N = 2_000
T = 50
DELTA = 0.10
MAX_ROUNDS = 16  # about 2 n / T for sigma^2 = 0.36


def bound(level: float, n: int = N) -> float:
    return level + 3.0 * math.sqrt(level * (1.0 - level) / n)


def factory(
    alpha: float = 0.05, beta: float = 0.05, plug_in: bool = True, max_rounds: int = MAX_ROUNDS
) -> Callable[[], PairedSequentialTest]:
    return lambda: PairedSequentialTest(DELTA, alpha, beta, 0.3, max_rounds, plug_in)


CASES = {
    "binary-plug-in": (True, SimOptions(), 0.08),
    "binary-fixed-lam": (False, SimOptions(), 0.08),
    "binary-opposite-effects-and-losses": (True, SimOptions(loss_rate=0.1), 0.25),
    "partial-credit": (True, SimOptions(scores="partial"), 0.08),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_boundary_null_error_rates(case: str) -> None:
    plug_in, options, heterogeneity = CASES[case]
    make = factory(plug_in=plug_in)
    at_margin = make_suite(T, -DELTA, random.Random(11), heterogeneity=heterogeneity)
    at_parity = make_suite(T, 0.0, random.Random(12), heterogeneity=heterogeneity)
    worse = simulate_many(at_margin, make, N, seed=21, options=options)
    equal = simulate_many(at_parity, make, N, seed=22, options=options)
    assert worse.no_regression <= bound(0.05), "alpha (ship a regression) exceeded"
    assert equal.regression <= bound(0.05), "beta (block a good change) exceeded"
    # Not vacuous: the same sweeps have power at the other process's alternative.
    assert worse.regression >= 0.85
    assert equal.no_regression >= 0.85


def test_asymmetric_levels_are_not_swapped() -> None:
    make = factory(alpha=0.05, beta=0.20)
    at_margin = make_suite(T, -DELTA, random.Random(13), heterogeneity=0.08)
    at_parity = make_suite(T, 0.0, random.Random(14), heterogeneity=0.08)
    worse = simulate_many(at_margin, make, N, seed=23)
    equal = simulate_many(at_parity, make, N, seed=24)
    assert worse.no_regression <= bound(0.05)
    assert equal.regression <= bound(0.20)


def test_identical_arms_mostly_no_regression() -> None:
    suite = make_suite(T, 0.0, random.Random(17), heterogeneity=0.0)
    assert suite.p_base == suite.p_cand
    summary = simulate_many(suite, factory(), 500, seed=27)
    assert summary.no_regression >= 0.9
    assert summary.regression <= 0.05


def test_clear_regression_is_rejected_quickly() -> None:
    suite = make_suite(T, -0.20, random.Random(18), heterogeneity=0.08)
    summary = simulate_many(suite, factory(), 500, seed=28)
    assert summary.regression >= 0.99
    assert summary.mean_rounds <= 3.0


def test_suite_mean_is_exact_and_probabilities_valid() -> None:
    for mean in (-0.2, -0.1, 0.0, 0.1):
        suite = make_suite(40, mean, random.Random(19), heterogeneity=0.25)
        assert suite.mean_diff == pytest.approx(mean, abs=1e-12)
        assert all(0.0 <= p <= 1.0 for p in suite.p_base + suite.p_cand)


def test_lost_pairs_shrink_rounds_and_outcome_is_seeded() -> None:
    suite = make_suite(T, 0.0, random.Random(20))
    options = SimOptions(loss_rate=0.3)
    first = simulate_sweep(suite, factory()(), random.Random(5), options)
    again = simulate_sweep(suite, factory()(), random.Random(5), options)
    assert first == again
    assert first.pairs < first.rounds * T
