"""The sweep's statistical decision, replayed from trials.jsonl alone.

The sweep and ``gate verify`` both call ``replay``: the decision is a pure function of the
finished trials, so a resumed sweep continues exactly where it stopped and a verifier can
re-derive it.
"""

from __future__ import annotations

from typing import Any

from gate.config.schema import StatisticsConfig
from gate.statistics import PairedSequentialTest


def round_pairs(
    trials: list[dict[str, Any]], tasks: list[str], round_no: int, score: str,
    candidate: str = "candidate", baseline: str = "baseline",
) -> tuple[list[float], bool]:
    """Differences of the complete pairs of a round, and whether every cell has finished."""
    cells = {(t["arm"], t["task"]): t for t in trials if t["round"] == round_no}
    diffs: list[float] = []
    finished = True
    for task in tasks:
        c, b = cells.get((candidate, task)), cells.get((baseline, task))
        if c is None or b is None:
            finished = False
            continue
        if c["status"] == "scored" and b["status"] == "scored":
            diffs.append(_score(c, score) - _score(b, score))
    return diffs, finished


def _score(trial: dict[str, Any], score: str) -> float:
    return float(trial["reward"]) if score == "reward" else (1.0 if trial["success"] else 0.0)


def replay(
    stats: StatisticsConfig, trials: list[dict[str, Any]], tasks: list[str], max_rounds: int,
) -> tuple[PairedSequentialTest, list[dict[str, Any]]]:
    """Feed every finished round, in order, to a fresh test. Returns it and the per-round log."""
    test = PairedSequentialTest(stats.delta, stats.alpha, stats.beta, stats.lam, max_rounds,
                                stats.plug_in)
    log: list[dict[str, Any]] = []
    for round_no in range(1, max_rounds + 1):
        diffs, finished = round_pairs(trials, tasks, round_no, stats.score)
        if not finished:
            break
        d = test.update(diffs)
        log.append({"round": round_no, "pairs": len(diffs), "verdict": d.verdict,
                    "e_reject": d.e_reject, "e_accept": d.e_accept,
                    "mean_diff": sum(diffs) / len(diffs) if diffs else None})
        if d.decided:
            break
    return test, log
