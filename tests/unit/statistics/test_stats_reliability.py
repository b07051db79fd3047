"""pass^k, pass@k, binomial intervals and percentiles: golden numbers and properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.statistics import (
    clopper_pearson_interval,
    pass_at_k,
    pass_hat_k,
    pass_hat_k_curve,
    percentile,
    wilson_interval,
)


def test_pass_hat_k_golden_and_unbiased_below_plug_in() -> None:
    result = pass_hat_k([(8, 6)], 4)
    assert round(result.value or 0.0, 4) == 0.2143
    assert pytest.approx(0.316, abs=1e-3) == (6 / 8) ** 4  # the biased plug-in


def test_pass_hat_k_excludes_and_reports_short_tasks() -> None:
    result = pass_hat_k([(8, 6), (2, 2), (4, 4)], 4)
    assert result.tasks_used == 2
    assert result.tasks_excluded == 1
    assert result.value == pytest.approx((15 / 70 + 1.0) / 2)
    assert pass_hat_k([(2, 1)], 3).value is None
    with pytest.raises(ValueError, match="successes"):
        pass_hat_k([(3, 4)], 1)


def test_pass_at_k_golden() -> None:
    assert pass_at_k(10, 0, 3) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(8, 2, 4) == pytest.approx(1 - 15 / 70)


def test_wilson_golden() -> None:
    assert [round(x, 3) for x in wilson_interval(8, 10)] == [0.490, 0.943]
    assert [round(x, 3) for x in wilson_interval(40, 50)] == [0.670, 0.888]
    assert [round(x, 3) for x in wilson_interval(0, 10)] == [0.0, 0.278]


def test_clopper_pearson_golden() -> None:
    assert [round(x, 3) for x in clopper_pearson_interval(8, 10)] == [0.444, 0.975]
    assert clopper_pearson_interval(0, 10)[0] == 0.0
    assert clopper_pearson_interval(10, 10)[1] == 1.0


def test_percentiles() -> None:
    values = [float(x) for x in range(1, 101)]
    assert percentile(values, 0.5) == pytest.approx(50.5)
    assert percentile(values, 0.95) == pytest.approx(95.05)
    assert percentile(values, 0.95, method="nearest") == 95.0
    assert percentile([3.0], 0.95) == 3.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


task_counts = st.lists(
    st.integers(min_value=5, max_value=12).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n))
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(task_counts)
def test_pass_hat_k_in_unit_interval_and_monotone(per_task: list[tuple[int, int]]) -> None:
    curve = [r.value for r in pass_hat_k_curve(per_task, 5)]
    assert all(v is not None and 0.0 <= v <= 1.0 for v in curve)
    values = [v for v in curve if v is not None]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(values))
    # pass^1 is the plain success rate averaged over tasks.
    assert values[0] == pytest.approx(sum(c / n for n, c in per_task) / len(per_task))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=500).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n))
    )
)
def test_intervals_contain_point_estimate(nc: tuple[int, int]) -> None:
    n, c = nc
    p = c / n
    lo, hi = wilson_interval(c, n)
    assert 0.0 <= lo <= p <= hi <= 1.0
    lo_cp, hi_cp = clopper_pearson_interval(c, n)
    assert 0.0 <= lo_cp <= p <= hi_cp <= 1.0


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=1, max_value=30).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n))
    )
)
def test_pass_at_k_nondecreasing_in_k(nc: tuple[int, int]) -> None:
    n, c = nc
    values = [pass_at_k(n, c, k) for k in range(1, n + 1)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(values))
