"""The sweep's statistical decision, replayed from trials.jsonl alone.

The sweep and ``gate verify`` both call ``replay``: the decision is a pure function of the
finished trials and the planned units, so a resumed sweep continues exactly where it stopped
and a verifier can re-derive it.
"""

from __future__ import annotations

from gate.config.schema import StatisticsConfig
from gate.engine.plan import Unit, batches
from gate.records import RoundLog, Trial
from gate.statistics import PairedSequentialTest


def batch_pairs(
    trials_by_id: dict[str, Trial], units: list[Unit], score: str,
    candidate: str = "candidate", baseline: str = "baseline",
) -> tuple[list[float], bool]:
    """Differences of the complete pairs of a batch, and whether every cell has finished.

    A pair lost to a provider error or an environment error on either side is left out
    (never scored as a failure).
    """
    diffs: list[float] = []
    finished = True
    for unit in units:
        c = trials_by_id.get(unit.trial_id(candidate))
        b = trials_by_id.get(unit.trial_id(baseline))
        if c is None or b is None:
            finished = False
            continue
        if c.status == "scored" and b.status == "scored":
            diffs.append(_score(c, score) - _score(b, score))
    return diffs, finished


def _score(trial: Trial, score: str) -> float:
    return (trial.reward or 0.0) if score == "reward" else (1.0 if trial.success else 0.0)


def replay(
    stats: StatisticsConfig, trials: list[Trial], units: list[Unit],
) -> tuple[PairedSequentialTest, list[RoundLog]]:
    """Feed every finished batch, in order, to a fresh test. Returns it and the per-check log."""
    groups = batches(units)
    test = PairedSequentialTest(stats.delta, stats.alpha, stats.beta, stats.lam, len(groups),
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
