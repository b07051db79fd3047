"""Per-pair bets that land on the threshold, and the e-process property they must keep
(docs/statistics.md, "Landing on the threshold").

The per-pair bet is the growth-optimal bet moved to the nearest value at which a whole number
of pairs takes the log e-value exactly to its threshold. It depends on the e-value so far, so
these tests check, exactly and for any history, that it is still fixed before the pair it is
staked on: on the null boundary the next factor has expectation exactly 1 (a bet that looked at
the pair would move it), inside the null at most 1.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gate.statistics import PairedSequentialTest, bet_caps

DELTA = 0.1
pair_values = st.sampled_from((-1.0, -0.5, 0.0, 0.25, 1.0))
histories = st.lists(pair_values, min_size=0, max_size=40)


def per_pair(level: float = 0.05) -> PairedSequentialTest:
    return PairedSequentialTest(DELTA, level, level, 0.3, 10_000, True, per_pair=True)


def _fed(history: list[float], level: float) -> PairedSequentialTest:
    test = per_pair(level)
    for d in history:
        if test.verdict != "continue":
            break
        test.update([d])
    return test


def _next_factor_mean(test: PairedSequentialTest, law: dict[float, float], side: str) -> float:
    """E[K after the next pair / K now], exactly: every value of the law fed to a copy."""
    total = 0.0
    for d, p in law.items():
        copy = PairedSequentialTest.from_dict(test.to_dict())
        before = copy.log_e_reject if side == "reject" else copy.log_e_accept
        copy.update([d])
        after = copy.log_e_reject if side == "reject" else copy.log_e_accept
        total += p * math.exp(after - before)
    return total


@st.composite
def laws_with_mean(draw: st.DrawFn, mean: float) -> dict[float, float]:
    """A law on {lo, mean, hi} in [-1, 1] whose expectation is ``mean``."""
    lo = draw(st.floats(min_value=-1.0, max_value=mean - 0.05))
    hi = draw(st.floats(min_value=mean + 0.05, max_value=1.0))
    at_mean = draw(st.floats(min_value=0.0, max_value=0.95))
    p_lo = (1.0 - at_mean) * (hi - mean) / (hi - lo)
    return {lo: p_lo, mean: at_mean, hi: 1.0 - at_mean - p_lo}


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(histories, st.sampled_from((0.05, 0.3)), laws_with_mean(0.0), laws_with_mean(-DELTA))
def test_on_the_null_boundary_the_next_factor_has_expectation_one(
    history: list[float], level: float, zero: dict[float, float], minus_delta: dict[float, float]
) -> None:
    """K_rej under Delta = 0 and K_ok under Delta = -delta: a martingale step, whatever the
    history (level 0.3 puts the thresholds within reach, where the landing bets act)."""
    test = _fed(history, level)
    assume(test.verdict == "continue")
    assert _next_factor_mean(test, zero, "reject") == pytest.approx(1.0, abs=1e-9)
    assert _next_factor_mean(test, minus_delta, "accept") == pytest.approx(1.0, abs=1e-9)


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(histories, st.floats(min_value=0.0, max_value=0.5))
def test_inside_the_null_the_next_factor_has_expectation_at_most_one(
    history: list[float], shift: float
) -> None:
    test = _fed(history, 0.3)
    assume(test.verdict == "continue")
    better = {-1.0: 0.2, 0.0: 0.5 - shift / 2, 1.0: 0.3 + shift / 2}  # mean >= 0.1 > 0
    worse = {-1.0: 0.4 + shift / 2, 0.0: 0.4 - shift / 2, 1.0: 0.2}  # mean <= -0.2 < -delta
    assert _next_factor_mean(test, better, "reject") <= 1.0 + 1e-12
    assert _next_factor_mean(test, worse, "accept") <= 1.0 + 1e-12


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(histories, st.sampled_from((0.05, 0.2)))
def test_each_bet_is_a_landing_neighbour_of_the_growth_optimal_bet(
    history: list[float], level: float
) -> None:
    """With k = floor(gap / log(1 + kelly unit)), the bet takes the log e-value to the
    threshold in exactly k or k + 1 pairs of increment ``unit``, and stays within its cap."""
    test = _fed(history, level)
    assume(test.verdict == "continue")
    state = test.to_dict()
    state["params"]["per_pair"] = False  # the same history, bet without landing: the Kelly bet
    kelly = PairedSequentialTest.from_dict(state)
    caps = bet_caps(DELTA)
    sides = (
        (test.lam_reject, kelly.lam_reject, test._log_rej_threshold - test.log_e_reject, 1.0,
         caps[0]),
        (test.lam_accept, kelly.lam_accept, test._log_ok_threshold - test.log_e_accept, DELTA,
         caps[1]),
    )
    for bet, kelly_bet, gap, unit, cap in sides:
        assert 0.0 < bet <= cap
        steps = gap / math.log1p(bet * unit)
        assert steps == pytest.approx(round(steps), abs=1e-6)
        k = math.floor(gap / math.log1p(kelly_bet * unit))
        assert round(steps) in (k, k + 1)


@pytest.mark.parametrize("prefix", [[], [0.0] * 7, [1.0, -1.0, 0.0, 0.0] * 3, [0.5, -0.5] * 4])
def test_a_regression_lands_exactly_on_its_threshold(prefix: list[float]) -> None:
    """0/1 losses of the candidate: the crossing pair takes K_rej to 1/beta, not past it
    (wealth past the threshold is growth paid for and never used)."""
    test = per_pair()
    test.update(prefix)
    while test.verdict == "continue":
        test.update([-1.0])
    assert test.verdict == "regression"
    assert test.log_e_reject == pytest.approx(math.log(20.0), abs=1e-9)
    assert test.log_e_reject >= math.log(20.0)


def test_correlated_arms_land_exactly_on_the_accept_threshold() -> None:
    test = per_pair()
    test.update([0.0] * 5 + [1.0, -1.0])
    while test.verdict == "continue":
        test.update([0.0])  # the arms agree: each pair is worth 1 + lam delta to K_ok
    assert test.verdict == "no_regression"
    assert test.log_e_accept == pytest.approx(math.log(20.0), abs=1e-9)


def test_rounds_and_fixed_bets_do_not_land() -> None:
    """A round is bet at one lam (landing means nothing there); plug_in: false bets the fixed
    lam: neither moves with the e-value."""
    for test in (PairedSequentialTest(DELTA, 0.05, 0.05, 0.3, 50),
                 PairedSequentialTest(DELTA, 0.05, 0.05, 0.3, 50, False, per_pair=True)):
        assert test.lam_reject == pytest.approx(0.3)
        test.update([-1.0, 0.0])
        first = test.lam_reject
        state = test.to_dict()
        state["state"]["log_e_reject"] += 1.0
        assert PairedSequentialTest.from_dict(state).lam_reject == first
