"""Own normal quantile and incomplete beta against the standard library and closed forms."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from gate.statistics import betainc, betainc_inv, norm_cdf, norm_ppf


@pytest.mark.parametrize("p", [1e-12, 1e-6, 0.001, 0.02425, 0.05, 0.3, 0.5, 0.8, 0.975, 1 - 1e-9])
def test_norm_ppf_matches_stdlib(p: float) -> None:
    assert norm_ppf(p) == pytest.approx(NormalDist().inv_cdf(p), rel=1e-9, abs=1e-9)


def test_norm_ppf_known_values_and_inverse() -> None:
    assert norm_ppf(0.95) == pytest.approx(1.6448536, abs=1e-7)
    assert norm_ppf(0.975) == pytest.approx(1.9599640, abs=1e-7)
    assert norm_cdf(norm_ppf(0.123)) == pytest.approx(0.123, abs=1e-12)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, math.nan])
def test_norm_ppf_rejects_outside_open_interval(p: float) -> None:
    with pytest.raises(ValueError, match="0 < p < 1"):
        norm_ppf(p)


def test_betainc_closed_forms() -> None:
    # I_x(1, b) = 1 - (1 - x)^b and I_x(a, 1) = x^a; I_0.4(2, 3) = 0.5248.
    assert betainc(1, 3, 0.3) == pytest.approx(1 - 0.7**3, abs=1e-12)
    assert betainc(4, 1, 0.6) == pytest.approx(0.6**4, abs=1e-12)
    assert betainc(2, 3, 0.4) == pytest.approx(0.5248, abs=1e-12)
    assert betainc(5, 5, 0.5) == pytest.approx(0.5, abs=1e-12)
    assert betainc(2, 2, 0.0) == 0.0
    assert betainc(2, 2, 1.0) == 1.0


def test_betainc_inv_inverts() -> None:
    for a, b, p in [(8, 3, 0.025), (9, 2, 0.975), (0.5, 0.5, 0.3), (30, 70, 0.5)]:
        assert betainc(a, b, betainc_inv(a, b, p)) == pytest.approx(p, abs=1e-10)
    with pytest.raises(ValueError, match="a > 0"):
        betainc(0, 1, 0.5)
