"""The default bet: a plug-in bet and a check after every pair (docs/statistics.md).

Validity rests on two facts tested here: the bet used on pair i is computed from pairs before i
only (predictable), and the resulting e-process is a nonnegative supermartingale under the null,
so that even when stopped at its first crossing its expectation is at most 1 and the probability
of crossing 1/level is at most the level (checked exactly, by enumerating every sequence).
"""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from bench.simulate import SimOptions, make_suite, simulate_many
from gate.config.schema import StatisticsConfig
from gate.statistics import PairedSequentialTest

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it


def per_pair(
    alpha: float = 0.05, beta: float = 0.05, max_checks: int = 1000
) -> PairedSequentialTest:
    return PairedSequentialTest(0.1, alpha, beta, 0.3, max_checks, True, per_pair=True)


def test_bet_on_a_pair_is_fixed_before_the_pair() -> None:
    rng = random.Random(3)
    prefix = [rng.choice((-1.0, 0.0, 1.0, 0.5)) for _ in range(25)]
    for last in (-1.0, 0.0, 1.0):
        test = per_pair()
        for d in prefix:
            test.update([d])
        lam_rej, lam_ok, before_rej, before_ok = (
            test.lam_reject, test.lam_accept, test.log_e_reject, test.log_e_accept)
        test.update([last])
        # The increment is exactly the bet announced before the pair was seen, whatever it is.
        assert test.log_e_reject - before_rej == pytest.approx(math.log1p(-lam_rej * last))
        assert test.log_e_accept - before_ok == pytest.approx(math.log1p(lam_ok * (last + 0.1)))


def test_batching_does_not_change_the_per_pair_process() -> None:
    rng = random.Random(4)
    pairs = [rng.choice((-1.0, 0.0, 0.0, 1.0)) for _ in range(40)]
    one_by_one, in_batches = per_pair(), per_pair()
    for d in pairs:
        one_by_one.update([d])
    for i in range(0, 40, 8):
        in_batches.update(pairs[i : i + 8])
    assert in_batches.log_e_reject == pytest.approx(one_by_one.log_e_reject, abs=1e-12)
    assert in_batches.log_e_accept == pytest.approx(one_by_one.log_e_accept, abs=1e-12)
    assert in_batches.pairs == one_by_one.pairs == 40


def test_pairs_after_a_crossing_are_not_consumed() -> None:
    test = per_pair()
    decision = test.update([-1.0] * 40)
    assert decision.verdict == "regression"
    assert decision.pairs < 40
    assert decision.rounds == 1
    assert math.log(decision.e_reject) >= math.log(20.0)


def _expected_stopped_e(
    dist: dict[float, float], n: int, side: str, level: float
) -> tuple[float, float]:
    """E[K at min(first crossing, n)] and P(cross by n), exactly, over every sequence."""
    expected = crossed = 0.0
    for seq in itertools.product(list(dist), repeat=n):
        test = per_pair(alpha=level, beta=level)
        prob = math.prod(dist[d] for d in seq)  # pairs after a stop still weigh in
        for d in seq:
            test.update([d])
            if test.verdict != "continue":
                break
        log_e = test.log_e_reject if side == "reject" else test.log_e_accept
        expected += prob * math.exp(log_e)
        wanted = "regression" if side == "reject" else "no_regression"
        crossed += prob * (test.verdict == wanted)
    return expected, crossed


# Pair distributions on the null boundaries, as an i.i.d. task draw from a mixed suite gives:
# two tasks with effects +0.3 and -0.3 (mean 0), discordance 0.5; and mean -delta.
MEAN_ZERO = {-1.0: 0.25, 0.0: 0.5, 1.0: 0.25}
MEAN_MINUS_DELTA = {-1.0: 0.3, 0.0: 0.5, 1.0: 0.2}
PARTIAL_MEAN_ZERO = {-1.0: 0.1, -0.5: 0.2, 0.0: 0.3, 0.5: 0.2, 1.0: 0.2}


@pytest.mark.parametrize(
    ("dist", "side"),
    [(MEAN_ZERO, "reject"), (PARTIAL_MEAN_ZERO, "reject"), (MEAN_MINUS_DELTA, "accept")],
)
def test_stopped_e_process_has_expectation_at_most_one_under_the_null(
    dist: dict[float, float], side: str
) -> None:
    assert sum(dist.values()) == pytest.approx(1.0)
    level = 0.4  # a low threshold (2.5) so that crossings happen within a few pairs
    expected, crossed = _expected_stopped_e(dist, 7 if len(dist) == 3 else 5, side, level)
    assert expected <= 1.0 + 1e-9
    assert 0.0 < crossed <= level


def test_expectation_falls_strictly_below_one_inside_the_null() -> None:
    inside = {-1.0: 0.2, 0.0: 0.5, 1.0: 0.3}  # mean +0.1 >= 0: inside the "regression" null
    expected, _ = _expected_stopped_e(inside, 6, "reject", 0.4)
    assert expected < 0.99


def test_state_with_per_pair_round_trips_and_config_selects_it() -> None:
    test = per_pair()
    test.update([0.0, 1.0, -1.0, 0.0])
    again = PairedSequentialTest.from_dict(json.loads(json.dumps(test.to_dict())))
    assert again.per_pair
    assert again.to_dict() == test.to_dict()
    assert StatisticsConfig().schedule == "iid"
    built = PairedSequentialTest.from_config(StatisticsConfig(), per_pair=True)
    assert built.per_pair


def test_default_keeps_error_rates_at_the_design_point() -> None:
    """N 2,000 seeded sweeps per boundary null; bound 0.05 + 3 sqrt(0.05 0.95 / 2000) = 0.065."""
    n, bound = 2_000, 0.05 + 3 * math.sqrt(0.05 * 0.95 / 2_000)
    options = SimOptions(schedule="iid", batch=64)  # run 64 at once: the same per-pair bets

    def make() -> PairedSequentialTest:
        return per_pair(max_checks=math.ceil(16 * 50 / 64))

    at_margin = make_suite(50, -0.1, random.Random(31), heterogeneity=0.08)
    at_parity = make_suite(50, 0.0, random.Random(32), heterogeneity=0.08)
    worse = simulate_many(at_margin, make, n, seed=41, options=options)
    equal = simulate_many(at_parity, make, n, seed=42, options=options)
    assert worse.no_regression <= bound, "alpha (ship a regression) exceeded"
    assert equal.regression <= bound, "beta (block a good change) exceeded"
    assert worse.regression >= 0.9  # and it has power
    assert equal.no_regression >= 0.9
