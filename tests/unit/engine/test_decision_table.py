"""gate.engine.decision, function by function: each row is an input and the answer the
decision must give (docs/statistics.md: what a pair is, which losses count against an arm)."""

from __future__ import annotations

import math

import pytest
from builders import broken, lost, pair, trial, units

from gate.config.schema import PassKSlo, SloConfig, StatisticsConfig
from gate.engine.decision import (
    SLO_BETA_SHARE,
    arm_fault,
    batch_pairs,
    binomial_two_sided,
    bounded_slos,
    decision_beta,
    loss_imbalance,
    pair_counts,
    replay,
    trial_value,
)
from gate.records import Trial

NO_CALL = trial(status="no_model_call")


@pytest.mark.parametrize(("t", "expected"), [
    (trial(), False),
    (trial(success=False), False),
    (NO_CALL, True),
    (lost(kind="bad_request"), True),
    (lost(kind="response_too_large"), True),
    (lost(kind="server_error"), False),
    (lost(kind="rate_limited"), False),
    (lost(kind="timeout"), False),
    (broken(), False),
], ids=["scored", "scored-failure", "no-model-call", "bad-request", "too-large",
        "server-error", "rate-limited", "timeout", "environment-error"])
def test_arm_fault(t: Trial, expected: bool) -> None:
    assert arm_fault(t) is expected


@pytest.mark.parametrize(("t", "score", "expected"), [
    (trial(success=True), "success", 1.0),
    (trial(success=False), "success", 0.0),
    (trial(success=True, reward=0.25), "success", 1.0),
    (trial(success=False, reward=0.25), "reward", 0.25),
    (trial(success=True).model_copy(update={"reward": None}), "reward", 0.0),
    (lost(kind="bad_request"), "success", 0.0),
    (lost(kind="bad_request"), "reward", 0.0),
    (NO_CALL, "success", 0.0),
    (lost(kind="server_error"), "success", None),
    (broken(), "reward", None),
], ids=["success", "failure", "success-ignores-reward", "reward", "reward-missing",
        "arm-fault", "arm-fault-reward", "no-model-call", "provider-loss", "environment-error"])
def test_trial_value(t: Trial, score: str, expected: float | None) -> None:
    assert trial_value(t, score) == expected


@pytest.mark.parametrize(("c", "b", "expected"), [
    (trial("candidate"), trial("baseline"), True),
    (None, trial("baseline"), False),
    (trial("candidate"), None, False),
    (lost("candidate"), trial("baseline"), False),
    (trial("candidate"), broken("baseline"), False),
    (lost("candidate", kind="bad_request"), trial("baseline"), True),
    (trial("candidate", status="no_model_call"), trial("baseline", success=False), True),
], ids=["both-scored", "no-candidate", "no-baseline", "candidate-lost", "baseline-broken",
        "candidate-arm-fault", "candidate-no-call"])
def test_pair_counts(c: Trial | None, b: Trial | None, expected: bool) -> None:
    assert pair_counts(c, b, "success") is expected


PLAN = units(["t1", "t2"], 1)  # one batch of two units


@pytest.mark.parametrize(("trials", "expected"), [
    ([*pair("t1"), *pair("t2")], ([0.0, 0.0], True)),
    ([*pair("t1", candidate=False), *pair("t2", baseline=False)], ([-1.0, 1.0], True)),
    ([*pair("t1"), trial("candidate", "t2")], ([0.0], False)),
    ([], ([], False)),
    ([*pair("t1"), lost("candidate", "t2"), trial("baseline", "t2")], ([0.0], True)),
    ([*pair("t1"), broken("candidate", "t2"), trial("baseline", "t2")], ([0.0], True)),
    ([*pair("t1"), lost("candidate", "t2", kind="bad_request"), trial("baseline", "t2")],
     ([0.0, -1.0], True)),
], ids=["ties", "one-worse-one-better", "unfinished", "nothing-run", "provider-loss-drops",
        "environment-error-drops", "arm-fault-is-a-failure"])
def test_batch_pairs(trials: list[Trial], expected: tuple[list[float], bool]) -> None:
    assert batch_pairs({t.trial_id: t for t in trials}, PLAN, "success") == expected


def test_batch_pairs_names_the_arms_it_pairs() -> None:
    trials = [trial("new", "t1", success=True), trial("old", "t1", success=False)]
    by_id = {t.trial_id: t for t in trials}
    assert batch_pairs(by_id, units(["t1"]), "success", "new", "old") == ([1.0], True)


@pytest.mark.parametrize(("slos", "expected"), [
    (SloConfig(provider_error_share_max=None), 0),
    (SloConfig(), 1),  # provider_error_share_max is on by default
    (SloConfig(provider_error_share_max=None, cost_per_success_usd_max=0.1), 0),
    (SloConfig(success_rate_min=0.9, p95_latency_s_max=3.0), 3),
    (SloConfig(success_rate_min=0.9, pass_k=PassKSlo(k=2, min=0.5), p95_latency_s_max=3.0,
               cost_per_success_usd_max=0.1), 4),
], ids=["none", "default", "cost-is-not-bounded", "three", "all"])
def test_bounded_slos(slos: SloConfig, expected: int) -> None:
    assert bounded_slos(slos) == expected


@pytest.mark.parametrize(("slos", "expected"), [
    (None, 0.05),
    (SloConfig(provider_error_share_max=None), 0.05),
    (SloConfig(), 0.05 * (1 - SLO_BETA_SHARE)),
    (SloConfig(success_rate_min=0.5), 0.05 * (1 - SLO_BETA_SHARE)),
], ids=["no-slos", "no-bounded-slo", "one-bounded", "two-bounded"])
def test_decision_beta(slos: SloConfig | None, expected: float) -> None:
    assert decision_beta(StatisticsConfig(beta=0.05), slos) == pytest.approx(expected)


def _rounds(n: int, *, candidate: bool, baseline: bool, tasks: int = 1) -> list[Trial]:
    return [t for r in range(1, n + 1) for k in range(1, tasks + 1)
            for t in pair(f"t{k}", r, candidate=candidate, baseline=baseline)]


ROUNDS = StatisticsConfig(schedule="rounds", max_rounds=200)
N = ROUNDS.max_rounds


@pytest.mark.parametrize(("trials", "verdict", "checks", "pairs"), [
    # nothing finished: no check ran
    ([], "continue", 0, 0),
    # round 2 is missing its baseline: only round 1 is checked
    ([*_rounds(1, candidate=True, baseline=True), trial("candidate", "t1", 2)],
     "continue", 1, 1),
    # a pair lost to the provider in round 1 leaves that check with no pair
    ([lost("candidate", "t1", 1), trial("baseline", "t1", 1)], "continue", 1, 0),
], ids=["nothing", "stops-at-the-unfinished-round", "lost-pair"])
def test_replay_checks_finished_rounds_only(trials: list[Trial], verdict: str, checks: int,
                                            pairs: int) -> None:
    test, log = replay(ROUNDS, trials, units(["t1"], N))
    assert (test.verdict, len(log), test.pairs) == (verdict, checks, pairs)
    assert [row.round for row in log] == list(range(1, checks + 1))


@pytest.mark.parametrize(("candidate", "baseline", "verdict"), [
    (False, True, "regression"),
    (True, True, "no_regression"),
], ids=["always-worse", "always-equal"])
def test_replay_decides_and_stops_reading(candidate: bool, baseline: bool, verdict: str) -> None:
    trials = _rounds(N, candidate=candidate, baseline=baseline)
    test, log = replay(ROUNDS, trials, units(["t1"], N))
    assert test.verdict == verdict
    assert log[-1].verdict == verdict
    assert len(log) < N  # decided early, nothing read after the deciding check
    assert all(row.verdict == "continue" for row in log[:-1])
    assert sum(row.pairs for row in log) == test.pairs == len(log)
    assert all(row.mean_diff == (0.0 if candidate == baseline else -1.0) for row in log)


def test_replay_spends_beta_on_the_slos_when_they_are_bounded() -> None:
    stats = StatisticsConfig(beta=0.05)
    plain, _ = replay(stats, [], units(["t1"]))
    shared, _ = replay(stats, [], units(["t1"]), SloConfig(success_rate_min=0.9))
    assert shared.beta == pytest.approx(plain.beta * (1 - SLO_BETA_SHARE))


def _one_sided(candidate_losses: int, baseline_losses: int = 0, *,
               kind: str = "server_error") -> tuple[list[Trial], int]:
    """Units where only the candidate lost, then only the baseline, then two clean ones."""
    trials: list[Trial] = []
    n = candidate_losses + baseline_losses + 2
    for r in range(1, n + 1):
        if r <= candidate_losses:
            trials += [lost("candidate", "t1", r, kind=kind), trial("baseline", "t1", r)]
        elif r <= candidate_losses + baseline_losses:
            trials += [trial("candidate", "t1", r), lost("baseline", "t1", r, kind=kind)]
        else:
            trials += pair("t1", r)
    return trials, n


@pytest.mark.parametrize(("candidate_losses", "baseline_losses", "kind", "flagged"), [
    (0, 0, "server_error", None),
    (7, 0, "server_error", None),  # p = 2/128 > 0.01
    (8, 0, "server_error", "candidate alone 8, baseline alone 0"),  # p = 2/256 < 0.01
    (0, 9, "timeout", "candidate alone 0, baseline alone 9"),
    (8, 1, "server_error", None),  # p = 2 * 10/512 > 0.01
    (8, 0, "bad_request", None),  # the arm's own fault: scored, not lost
], ids=["none", "seven-one-sided", "eight-one-sided", "baseline-side", "both-sides",
        "arm-fault-is-no-loss"])
def test_loss_imbalance(candidate_losses: int, baseline_losses: int, kind: str,
                        flagged: str | None) -> None:
    trials, n = _one_sided(candidate_losses, baseline_losses, kind=kind)
    why = loss_imbalance(trials, units(["t1"], n), "success")
    if flagged is None:
        assert why is None
    else:
        assert why is not None
        assert flagged in why


def test_loss_imbalance_ignores_units_lost_on_both_sides_or_unfinished() -> None:
    trials = [t for r in range(1, 11) for t in (lost("candidate", "t1", r),
                                                lost("baseline", "t1", r))]
    trials += [lost("candidate", "t1", r) for r in range(11, 21)]  # baseline never ran
    assert loss_imbalance(trials, units(["t1"], 20), "success") is None


@pytest.mark.parametrize(("x", "n", "expected"), [
    (0, 0, 1.0),
    (0, 1, 1.0),
    (1, 2, 1.0),
    (0, 8, 2 / 256),
    (8, 8, 2 / 256),
    (1, 10, 2 * 11 / 1024),
    (9, 10, 2 * 11 / 1024),
    (3, 6, 1.0),  # capped at 1
    (500, 1000, 1.0),
    (0, 1000, 2.0 ** -999),  # the log-space branch
    (1, 1000, 1001 * 2.0 ** -999),
], ids=["empty", "one", "even", "none-of-8", "all-of-8", "one-of-10", "nine-of-10",
        "capped", "half-of-1000", "none-of-1000", "one-of-1000"])
def test_binomial_two_sided(x: int, n: int, expected: float) -> None:
    assert math.isclose(binomial_two_sided(x, n), expected, rel_tol=1e-9)
