"""The sweep's statistical decision, replayed from trials.jsonl alone.

The sweep and ``gate verify`` both call ``replay``: the decision is a pure function of the
finished trials and the planned units, so a resumed sweep continues exactly where it stopped
and a verifier can re-derive it.
"""

from __future__ import annotations

import math

from gate.config.schema import SloConfig, StatisticsConfig
from gate.engine.plan import Unit, batches
from gate.records import RoundLog, Trial
from gate.statistics import PairedSequentialTest

# Which bets the sequential test makes (recorded in each run's manifest). 1: the first bets
# (prior weight 20, one cap for both sides); 2: the exact growth-optimal fraction of the
# three-point law for the accept side, a cap per side, prior weight 5; 3: as 2, and per pair
# each bet moved to the nearest one that lands exactly on its threshold. A run is re-derived
# (``gate verify``) and resumed only by the method that decided it.
DECISION_METHOD = 3

# Losses that are the arm's own doing: the request it sent was refused (400, e.g. a context
# overflow), its answer passed the size cap, or its agent program never called the model.
# Scored as that arm's failure: they can only hurt the arm that caused them.
ARM_FAULT_KINDS = frozenset({"bad_request", "response_too_large"})


def arm_fault(trial: Trial) -> bool:
    """A trial lost through the arm's own request or program (scored as its failure)."""
    if trial.status == "no_model_call":
        return True
    return (trial.status == "provider_error" and trial.provider_error is not None
            and trial.provider_error.kind in ARM_FAULT_KINDS)


def trial_value(trial: Trial, score: str) -> float | None:
    """The trial's score in the decision: its score when scored, 0 when the arm caused the
    loss, None when it is lost to the provider or to an environment error (the pair drops)."""
    if trial.status == "scored":
        return _score(trial, score)
    return 0.0 if arm_fault(trial) else None


def pair_counts(c: Trial | None, b: Trial | None, score: str) -> bool:
    """Whether a unit's two trials make a pair the decision uses."""
    return (c is not None and b is not None and trial_value(c, score) is not None
            and trial_value(b, score) is not None)


def batch_pairs(
    trials_by_id: dict[str, Trial], units: list[Unit], score: str,
    candidate: str = "candidate", baseline: str = "baseline",
) -> tuple[list[float], bool]:
    """Differences of the complete pairs of a batch, and whether every cell has finished.

    A pair lost to the provider (5xx, 429, timeouts after retries) or to an environment
    error on either side is left out; a trial the arm itself lost (``arm_fault``) is scored
    as that arm's failure.
    """
    diffs: list[float] = []
    finished = True
    for unit in units:
        c = trials_by_id.get(unit.trial_id(candidate))
        b = trials_by_id.get(unit.trial_id(baseline))
        if c is None or b is None:
            finished = False
            continue
        vc, vb = trial_value(c, score), trial_value(b, score)
        if vc is not None and vb is not None:
            diffs.append(vc - vb)
    return diffs, finished


def _score(trial: Trial, score: str) -> float:
    return (trial.reward or 0.0) if score == "reward" else (1.0 if trial.success else 0.0)


SLO_BETA_SHARE = 0.2  # of statistics.beta, for the SLOs' bounds together (gate.engine.slos)


def bounded_slos(slos: SloConfig) -> int:
    """How many configured SLOs carry an anytime bound (and share SLO_BETA_SHARE of beta)."""
    return sum(x is not None for x in (slos.success_rate_min, slos.pass_k,
                                       slos.p95_latency_s_max, slos.provider_error_share_max))


def decision_beta(stats: StatisticsConfig, slos: SloConfig | None) -> float:
    """The regression test's share of beta: all of it unless bounded SLOs are configured,
    else 1 - SLO_BETA_SHARE of it (the SLOs' bounds take the rest)."""
    if slos is None or bounded_slos(slos) == 0:
        return stats.beta
    return stats.beta * (1.0 - SLO_BETA_SHARE)


def replay(
    stats: StatisticsConfig, trials: list[Trial], units: list[Unit],
    slos: SloConfig | None = None,
) -> tuple[PairedSequentialTest, list[RoundLog]]:
    """Feed every finished batch, in order, to a fresh test. Returns it and the per-check log.
    With ``slos`` the test runs at ``decision_beta`` (the SLOs' bounds take the rest)."""
    groups = batches(units)
    beta = decision_beta(stats, slos)
    test = PairedSequentialTest(stats.delta, stats.alpha, beta, stats.lam, len(groups),
                                stats.plug_in, per_pair=stats.schedule == "iid")
    by_id = {t.trial_id: t for t in trials}
    log: list[RoundLog] = []
    for number, group in enumerate(groups, start=1):
        diffs, finished = batch_pairs(by_id, group, stats.score)
        if not finished:
            break
        before = test.pairs
        d = test.update(diffs)
        used = diffs[: d.pairs - before]  # per pair: none after a crossing
        log.append(RoundLog(round=number, pairs=len(used), verdict=d.verdict,
                            e_reject=d.e_reject, e_accept=d.e_accept,
                            mean_diff=sum(used) / len(used) if used else None))
        if d.decided:
            break
    return test, log


# A run is flagged when the arms' provider losses differ beyond chance at this level.
LOSS_TEST_LEVEL = 0.01


def loss_imbalance(trials: list[Trial], units: list[Unit], score: str) -> str | None:
    """Why the run is flagged when one arm lost more pairs to the provider than chance allows.

    Provider losses stay out of the decision, which is harmless only when they fall on the
    arms alike. Among the finished units where exactly one arm's trial was lost, each is the
    candidate's with probability 1/2 when the two arms' loss rates are equal (whatever that
    rate, task by task); the exact two-sided binomial test (McNemar's) at ``LOSS_TEST_LEVEL``.
    """
    by_id = {t.trial_id: t for t in trials}
    only_c = only_b = 0
    for unit in units:
        c, b = by_id.get(unit.trial_id("candidate")), by_id.get(unit.trial_id("baseline"))
        if c is None or b is None:
            continue
        lost_c, lost_b = trial_value(c, score) is None, trial_value(b, score) is None
        only_c += lost_c and not lost_b
        only_b += lost_b and not lost_c
    p = binomial_two_sided(only_c, only_c + only_b)
    if p >= LOSS_TEST_LEVEL:
        return None
    return (f"the arms lost pairs to provider or environment errors at different rates "
            f"(candidate alone {only_c}, baseline alone {only_b}; exact test p = {p:.2g} < "
            f"{LOSS_TEST_LEVEL:g}): the pairs left may flatter one arm")


def binomial_two_sided(x: int, n: int) -> float:
    """Exact two-sided p-value of x successes in n trials at p = 1/2 (1.0 when n = 0)."""
    if n == 0:
        return 1.0
    k = min(x, n - x)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / float(2**n)) if n < 1000 else min(1.0, math.exp(
        math.log(2 * tail) - n * math.log(2)))
