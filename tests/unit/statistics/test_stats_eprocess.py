"""Unit tests of the paired sequential test: arithmetic, decisions, state, validation."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.config.schema import StatisticsConfig
from gate.statistics import PairedSequentialTest, Thresholds, bet_caps, lam_cap

diffs = st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=0, max_size=60)


def test_thresholds_follow_alpha_and_beta() -> None:
    test = PairedSequentialTest(delta=0.1, alpha=0.05, beta=0.20, lam=0.3, max_rounds=8)
    assert test.thresholds == Thresholds(reject=5.0, accept=20.0)
    assert test.decision.thresholds.reject == pytest.approx(1 / 0.20)
    assert test.decision.thresholds.accept == pytest.approx(1 / 0.05)


def test_fixed_lam_products_are_exact() -> None:
    test = PairedSequentialTest(0.1, 0.05, 0.05, 0.3, 8, plug_in=False)
    round_diffs = [1.0, -1.0, 0.0, 0.5, -0.25]
    decision = test.update(round_diffs)
    k_rej = math.prod(1 - 0.3 * d for d in round_diffs)
    k_ok = math.prod(1 + 0.3 * (d + 0.1) for d in round_diffs)
    assert decision.e_reject == pytest.approx(k_rej, rel=1e-12)
    assert decision.e_accept == pytest.approx(k_ok, rel=1e-12)
    assert (decision.rounds, decision.pairs, decision.verdict) == (1, 5, "continue")


def test_clear_regression_rejects_and_clear_parity_accepts() -> None:
    reg = PairedSequentialTest(0.1, 0.05, 0.05, 0.3, 8, plug_in=False)
    assert reg.update([-1.0] * 10).verdict == "continue"  # 1.3^10 = 13.8 < 20
    assert reg.update([-1.0] * 2).verdict == "regression"  # 1.3^12 = 23.3 >= 20
    ok = PairedSequentialTest(0.1, 0.05, 0.05, 0.3, 8, plug_in=False)
    decision = ok.update([0.0] * 50)  # 1.03^50 = 4.38
    assert decision.verdict == "continue"
    assert ok.update([0.0] * 60).verdict == "no_regression"  # 1.03^110 = 25.8 >= 20


def test_round_limit_gives_inconclusive_and_extension_continues() -> None:
    test = PairedSequentialTest(0.1, 0.05, 0.05, 0.3, max_rounds=2, plug_in=False)
    assert test.update([0.0, -0.1]).verdict == "continue"
    assert test.update([0.0, -0.1]).verdict == "inconclusive"
    with pytest.raises(RuntimeError, match="verdict"):
        test.update([0.0])
    longer = test.extended(200)
    assert longer.decision.verdict == "continue"
    assert longer.decision.log_e_accept == test.decision.log_e_accept  # e-values carried over
    while longer.decision.verdict == "continue":
        longer.update([0.0] * 10)
    assert longer.decision.verdict == "no_regression"
    with pytest.raises(ValueError, match="decided"):
        longer.extended(500)


def test_tie_goes_to_regression() -> None:
    test = PairedSequentialTest(0.1, 0.05, 0.05, 0.3, 8, plug_in=False)
    state = test.to_dict()
    state["state"]["log_e_reject"] = math.log(20) - 1e-3
    state["state"]["log_e_accept"] = math.log(20) - 1e-3
    both = PairedSequentialTest.from_dict(state)
    # D = -delta/2 makes both factors exceed 1: 1 + 0.015 each.
    decision = both.update([-0.05] * 5)
    assert decision.log_e_reject >= math.log(20)
    assert decision.log_e_accept >= math.log(20)
    assert decision.verdict == "regression"


@pytest.mark.parametrize("bad", [1.0001, -1.5, math.nan, math.inf])
def test_scores_outside_unit_range_raise_without_changing_state(bad: float) -> None:
    test = PairedSequentialTest()
    before = test.to_dict()
    with pytest.raises(ValueError, match=r"outside \[-1, 1\]"):
        test.update([0.0, bad])
    assert test.to_dict() == before


@pytest.mark.parametrize(
    "kwargs",
    [{"delta": 0.0}, {"alpha": 1.0}, {"beta": 0.0}, {"lam": 0.95}, {"max_rounds": 0}],
)
def test_invalid_parameters_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        PairedSequentialTest(**kwargs)  # type: ignore[arg-type]


def test_from_config_uses_schema_defaults() -> None:
    cfg = StatisticsConfig()
    test = PairedSequentialTest.from_config(cfg)
    assert (test.delta, test.alpha, test.beta, test.max_rounds) == (
        cfg.delta,
        cfg.alpha,
        cfg.beta,
        cfg.max_rounds,
    )
    # the first bets are the config lam (K_rej exactly; K_ok's three-point bet within 0.001)
    assert test.decision.lam_reject == pytest.approx(cfg.lam)
    assert test.decision.lam_accept == pytest.approx(cfg.lam, abs=1e-3)


def test_plug_in_bets_are_predictable_and_adapt() -> None:
    test = PairedSequentialTest(0.1, 0.05, 0.05, 0.3, 50)
    announced = test.decision.lam_reject
    first = [1.0, -1.0] * 10
    k_rej = math.prod(1 - announced * d for d in first)
    assert test.update(first).e_reject == pytest.approx(k_rej)  # used the announced bet
    # Var(D) = 1 observed: the next bet shrinks towards delta / (1 + delta^2).
    assert test.decision.lam_reject < announced
    low_var = PairedSequentialTest(0.1, 0.05, 0.05, 0.3, 50)
    low_var.update([0.0] * 200)
    assert low_var.decision.lam_accept == pytest.approx(bet_caps(0.1)[1])  # capped Kelly bet


@pytest.mark.parametrize(("delta", "diffs_seen"), [
    (0.10, [0.0] * 40 + [1.0, -1.0] * 2),  # correlated arms: few discordant pairs
    (0.10, [1.0, -1.0, 0.0] * 10),
    (0.05, [0.0] * 10 + [0.5, -0.5] * 3),
    (0.20, [1.0, -1.0, 0.0, 0.0, 0.0] * 8),
])
def test_the_accept_bet_maximises_the_growth_of_the_three_point_law(
        delta: float, diffs_seen: list[float]) -> None:
    """K_ok bets the exact growth-optimal fraction for D on {-1, 0, 1} with mean 0 (its
    design alternative) and the shrunk variance, not the second-order m / (v + m^2). (A round
    is bet at that fraction; per pair it is then moved to land on the threshold:
    test_stats_landing.py.)"""
    test = PairedSequentialTest(delta, 0.05, 0.05, 0.3, 50)
    test.update(diffs_seen)
    n, w0 = test.pairs, test.prior_weight
    v0 = delta / 0.3 - delta**2
    v_n = test.sum_d2 / n - (test.sum_d / n) ** 2
    var = (w0 * v0 + n * v_n) / (w0 + n)
    law = {1.0: var / 2, 0.0: 1 - var, -1.0: var / 2}

    def growth(lam: float) -> float:
        return sum(p * math.log1p(lam * (d + delta)) for d, p in law.items())

    cap = bet_caps(delta)[1]
    grid = max((cap * k / 20_000 for k in range(20_001)), key=growth)
    assert test.decision.lam_accept == pytest.approx(grid, abs=2e-4)
    assert growth(test.decision.lam_accept) >= growth(grid) - 1e-12


def test_lost_pairs_and_empty_rounds_are_allowed() -> None:
    test = PairedSequentialTest(max_rounds=3)
    decision = test.update([])
    assert (decision.rounds, decision.pairs, decision.e_reject) == (1, 0, 1.0)
    assert test.update([0.5, -0.5, 0.0]).pairs == 3


def test_log_space_survives_extreme_runs() -> None:
    test = PairedSequentialTest(0.1, 0.05, 0.05, 0.3, 10_000, plug_in=False)
    state = test.to_dict()
    state["state"]["log_e_reject"] = -5000.0  # an e-value far below the smallest float
    test = PairedSequentialTest.from_dict(state)
    decision = test.update([1.0] * 3000)
    assert decision.log_e_reject < -5000.0
    assert decision.e_reject == 0.0
    assert math.isfinite(decision.e_accept)
    assert decision.verdict == "no_regression"


@settings(max_examples=100, deadline=None)
@given(st.lists(diffs, min_size=1, max_size=6), st.booleans(), st.booleans())
def test_state_round_trips_through_json(
    rounds: list[list[float]], plug_in: bool, per_pair: bool
) -> None:
    test = PairedSequentialTest(0.1, 0.05, 0.05, 0.3, 100, plug_in=plug_in, per_pair=per_pair)
    for round_diffs in rounds[:-1]:
        if test.decision.verdict == "continue":
            test.update(round_diffs)
    copy = PairedSequentialTest.from_dict(json.loads(json.dumps(test.to_dict())))
    assert copy.to_dict() == test.to_dict()
    assert copy.decision == test.decision
    if test.decision.verdict == "continue":
        assert copy.update(rounds[-1]) == test.update(rounds[-1])  # resumed == uninterrupted


@settings(max_examples=100, deadline=None)
@given(diffs)
def test_e_values_positive_and_order_free_within_a_round(round_diffs: list[float]) -> None:
    a = PairedSequentialTest(max_rounds=5).update(round_diffs)
    b = PairedSequentialTest(max_rounds=5).update(list(reversed(round_diffs)))
    assert a.e_reject > 0.0
    assert a.e_accept > 0.0
    assert a.log_e_reject == pytest.approx(b.log_e_reject, abs=1e-9)
    assert a.log_e_accept == pytest.approx(b.log_e_accept, abs=1e-9)


def test_malformed_state_raises_value_error() -> None:
    with pytest.raises(ValueError, match="malformed"):
        PairedSequentialTest.from_dict({"version": 1, "params": {}})
    state = PairedSequentialTest().to_dict()
    state["state"]["verdict"] = "ship-it"
    with pytest.raises(ValueError, match="unknown verdict"):
        PairedSequentialTest.from_dict(state)


def test_a_fixed_bet_is_clipped_to_the_cap_too() -> None:
    test = PairedSequentialTest(0.10, 0.05, 0.05, 0.85, 8, plug_in=False)
    assert test.lam_reject == test.lam_accept == lam_cap(0.10) == 0.75
    d = test.update([-1.0])
    assert d.log_e_reject == pytest.approx(math.log1p(0.75))


@pytest.mark.parametrize("delta", [0.05, 0.10, 0.3, 0.6])
def test_the_config_refuses_exactly_the_bets_above_the_cap(delta: float) -> None:
    cap = lam_cap(delta)
    assert StatisticsConfig(delta=delta, lam=cap).lam == cap
    with pytest.raises(ValueError, match="bet cap"):
        StatisticsConfig(delta=delta, lam=cap * 1.001)
