"""SLOs judged with anytime-valid bounds on the pairs the decision used: a breach only when
the bound clears the limit, "unmeasured" when the data cannot tell."""

from __future__ import annotations

import random

import pytest
from builders import trial

from gate.config.schema import SloConfig, StatisticsConfig
from gate.engine.decision import decision_beta
from gate.engine.slos import HoeffdingBound, evaluate_slos, slo_level
from gate.records import ArmSummary, Trial

STATS = StatisticsConfig()


def trials(successes: list[bool], latency: float = 1.0) -> list[Trial]:
    return [trial("candidate", f"t{i % 7}", i, success=s, latency_s=latency)
            for i, s in enumerate(successes, start=1)]


def judge(used: list[Trial], **slos: float) -> dict[str, str]:
    report = evaluate_slos(SloConfig(provider_error_share_max=None, **slos),
                           ArmSummary.model_construct(), used=used, audit=[], stats=STATS)
    return {c.slo: c.status for c in report.checks}


def test_a_point_estimate_below_the_limit_is_not_yet_a_breach() -> None:
    rng = random.Random(3)
    near = trials([rng.random() < 0.55 for _ in range(120)])  # 0.55 observed, limit 0.60
    assert sum(bool(t.success) for t in near) / 120 < 0.60
    assert judge(near, success_rate_min=0.60) == {"success_rate": "unmeasured"}
    far = trials([rng.random() < 0.2 for _ in range(120)])
    assert judge(far, success_rate_min=0.60) == {"success_rate": "breached"}
    good = trials([rng.random() < 0.97 for _ in range(300)])
    assert judge(good, success_rate_min=0.60) == {"success_rate": "met"}


def test_p95_latency_is_judged_on_the_share_within_the_limit() -> None:
    slow = trials([True] * 100, latency=30.0)
    assert judge(slow, p95_latency_s_max=10.0) == {"p95_latency_s": "breached"}
    # every trial within: never a breach (proving 95 % within takes more than 100 trials)
    assert judge(slow, p95_latency_s_max=60.0) == {"p95_latency_s": "unmeasured"}
    assert judge(slow * 30, p95_latency_s_max=60.0) == {"p95_latency_s": "met"}
    assert judge(slow[:3], p95_latency_s_max=10.0) == {"p95_latency_s": "unmeasured"}


def test_beta_is_split_between_the_test_and_the_bounded_slos() -> None:
    slos = SloConfig(success_rate_min=0.5, provider_error_share_max=0.2)
    # 0.2 of beta for the two bounded SLOs (0.005 each), the rest for the regression test
    assert decision_beta(STATS, slos) + 2 * slo_level(STATS, slos) == pytest.approx(STATS.beta)
    none = SloConfig(provider_error_share_max=None)
    assert decision_beta(STATS, none) == STATS.beta


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_bound_holds_at_every_time_in_simulation(p: float) -> None:
    """Over 400 sequences the bound misses the true mean at some time in at most level + 3 sd
    of the runs (an anytime property: checked after every observation)."""
    level, runs, misses = 0.05, 400, 0
    rng = random.Random(11)
    for _ in range(runs):
        bound = HoeffdingBound(level)
        for _ in range(300):
            bound.add(1.0 if rng.random() < p else 0.0)
            b = bound.bounds
            assert b is not None
            if b[1] < p:  # the upper bound below the truth: a false breach
                misses += 1
                break
    assert misses / runs <= level + 3 * (level * (1 - level) / runs) ** 0.5
