"""Golden numbers of bench/design.py (reference designs; docs/statistics.md)."""

from __future__ import annotations

import pytest

from bench.design import (
    exit_probability,
    fixed_design_rounds,
    kelly_lam,
    obrien_fleming_bounds,
    obrien_fleming_constant,
    one_sample_fixed_n,
    optimal_betting_pairs,
    plan_sweep,
    pocock_constant,
    round_limit,
    sprt_bernoulli,
    sprt_simulate,
)
from gate.statistics import fixed_sample_size


def test_sprt_wald_asn_golden() -> None:
    design = sprt_bernoulli(0.80, 0.70, 0.05, 0.20)
    assert round(design.asn_h0, 1) == 52.1
    assert round(design.asn_h1, 1) == 67.7
    assert design.upper == pytest.approx(2.772589, abs=1e-6)  # ln 16
    assert design.lower == pytest.approx(-1.558145, abs=1e-6)  # ln(0.2 / 0.95)


def test_one_sample_fixed_n_golden() -> None:
    assert one_sample_fixed_n(0.80, 0.70, 0.05, 0.20) == 109


def test_sprt_monte_carlo_golden_quick() -> None:
    design = sprt_bernoulli(0.80, 0.70, 0.05, 0.20)
    asn0, alpha_hat = sprt_simulate(design, 0.80, 20_000, seed=1)
    asn1, power = sprt_simulate(design, 0.70, 20_000, seed=2)
    assert asn0 == pytest.approx(54.9, abs=0.8)  # SE about 0.3 at N 20,000
    assert asn1 == pytest.approx(73.3, abs=1.2)
    assert alpha_hat == pytest.approx(0.043, abs=0.005)
    assert power > 0.78


def test_group_sequential_constants_golden() -> None:
    pocock = pocock_constant(5, 0.05)
    obf = obrien_fleming_constant(5, 0.05)
    bounds = obrien_fleming_bounds(5, 0.05)
    assert round(pocock, 3) == 2.413
    assert round(obf, 3) == 2.040
    assert [round(b, 3) for b in bounds] == [4.562, 3.226, 2.634, 2.281, 2.040]


def test_exit_probability_single_look_is_two_sided_normal_tail() -> None:
    assert exit_probability([1.959964]) == pytest.approx(0.05, abs=1e-6)
    # More looks at the same bound can only add exits.
    assert exit_probability([1.96 * k**0.5 for k in (1, 2)]) > 0.05


def test_fixed_sample_size_and_rounds() -> None:
    # (1.645 + 1.645)^2 * 0.3 / 0.01 = 324.7 paired trials.
    n = fixed_sample_size(0.10, 0.30, 0.05, 0.05)
    assert n == pytest.approx(324.7, abs=0.1)
    assert fixed_design_rounds(n, 50) == 7
    assert round_limit(n, 50) == 13
    assert fixed_design_rounds(100, 50) == 2  # exact multiples are not rounded up
    plan = plan_sweep(0.10, 0.05, 0.05, 0.30, 50)
    assert plan.fixed_rounds == 7
    assert plan.round_limit == 13
    assert plan.lam == pytest.approx(kelly_lam(0.10, 0.30)) == pytest.approx(0.3226, abs=1e-4)
    # Optimal betting needs about 0.55x the fixed-sample trials at alpha = beta = 0.05.
    ratio = optimal_betting_pairs(0.10, 0.30, 0.05) / n
    assert ratio == pytest.approx(0.57, abs=0.01)


def test_fixed_sample_size_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="delta"):
        fixed_sample_size(0.0, 0.3, 0.05, 0.05)
    with pytest.raises(ValueError, match="p0"):
        sprt_bernoulli(0.5, 0.5, 0.05, 0.2)
