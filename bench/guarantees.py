"""Benchmark: the decision's guarantees per run, case by case (issue 22), by simulation.

Each case simulates ``--n`` whole sweeps with the gate's own code: the per-pair test
(``gate.statistics.PairedSequentialTest``, default settings: iid schedule, a check after every
pair, 4 pairs run at once), the plan (``gate.engine.plan.plan_units``), the SLO bound
(``gate.engine.slos.HoeffdingBound``) and the loss test (``gate.engine.decision``). For every
case it prints the error rate with its 95 % Wilson interval, the bound it must stay within,
and the mean pairs run as a share of the fixed-sample design with the same errors. "old" rows
replay what main did before (plan from run.seed 1234, losses dropped, SLOs on point figures of
every trial on disk); "new" rows what the gate does now.

Cases:
- mixed suite (50 tasks, baseline success 0.05-0.95, per-task effects spread 0.05) at the two
  boundaries; correlated arms (the two arms share the trial's randomness with probability 0.9).
- aligned profile: per-task effects chosen so that the tasks the fixed plan of seed 1234 draws
  early favour the candidate (true difference -delta): old = that one plan for every sweep,
  new = a fresh plan per sweep (random salt).
- candidate-caused losses: 20 % / 40 % of the candidate's failed trials lost to a 400
  (context overflow): old = pair dropped, new = the candidate's failure.
- provider losses that fall on the candidate's failures (20 %, e.g. timeouts on long failing
  runs): old = dropped, inconclusive only above 20 % of all trials; new = dropped, and the run
  flagged (inconclusive) by the exact test on the arms' loss counts.
- SLO-meeting identical candidate: Delta = 0 and the candidate's success rate exactly at
  ``slos.success_rate_min``; the error is P(block) = P(regression or an SLO breach) against
  beta. Old = point estimate of all trials run; new = anytime bound on the decision's pairs,
  0.2 of beta for the SLO, 0.8 for the test.
- sharded vs single: the share of sweeps (among all; only passing ones can differ) whose exit
  code differs between one process and 2 stages of shards: old = the SLO on every trial on
  disk (a sharded run holds the whole stage), new = on the decision's pairs.

    .venv/bin/python bench/guarantees.py --n 2000      # the acceptance run
    .venv/bin/python bench/guarantees.py --n 300       # while developing
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.design import round_limit
from bench.simulate import Suite, make_suite
from gate.engine.decision import LOSS_TEST_LEVEL, SLO_BETA_SHARE, binomial_two_sided
from gate.engine.plan import plan_units
from gate.engine.shard import stage_bound
from gate.engine.slos import HoeffdingBound
from gate.statistics import PairedSequentialTest, fixed_sample_size, wilson_interval

DELTA, ALPHA, BETA, LAM, BATCH, TASKS = 0.10, 0.05, 0.05, 0.3, 4, 50


@dataclass(frozen=True)
class Case:
    name: str
    truth: float  # true suite-mean difference
    error: str  # "ship" (alpha) | "block" (beta) | "differ" (exit codes)
    new: bool = True  # the gate as it is now, else main before
    coupling: float = 0.0
    aligned: bool = False
    fixed_plan: bool = False
    arm_loss: float = 0.0  # share of the candidate's failures lost to a 400
    mnar_loss: float = 0.0  # share of the candidate's failures lost to the provider
    slo: bool = False  # success_rate_min at the candidate's true success rate
    shards: bool = False


CASES = (
    Case("mixed suite, new", -DELTA, "ship"),
    Case("mixed suite, new", 0.0, "block"),
    Case("correlated arms (0.9), new", -DELTA, "ship", coupling=0.9),
    Case("correlated arms (0.9), new", 0.0, "block", coupling=0.9),
    Case("aligned profile, old: plan of seed 1234", -DELTA, "ship", new=False, aligned=True,
         fixed_plan=True),
    Case("aligned profile, new: fresh plan per run", -DELTA, "ship", aligned=True),
    Case("candidate-caused losses 20 %, old: dropped", -DELTA, "ship", new=False,
         arm_loss=0.2),
    Case("candidate-caused losses 20 %, new: failures", -DELTA, "ship", arm_loss=0.2),
    Case("candidate-caused losses 40 %, old: dropped", -DELTA, "ship", new=False,
         arm_loss=0.4),
    Case("candidate-caused losses 40 %, new: failures", -DELTA, "ship", arm_loss=0.4),
    Case("provider losses on candidate failures 20 %, old", -DELTA, "ship", new=False,
         mnar_loss=0.2),
    Case("provider losses on candidate failures 20 %, new: flagged", -DELTA, "ship",
         mnar_loss=0.2),
    Case("SLO-meeting identical candidate, old: point figure", 0.0, "block", new=False,
         slo=True),
    Case("SLO-meeting identical candidate, new: anytime bound", 0.0, "block", slo=True),
    Case("sharded vs single exit codes, old", 0.0, "differ", new=False, slo=True, shards=True),
    Case("sharded vs single exit codes, new", 0.0, "differ", slo=True, shards=True),
)


@dataclass
class Sweep:
    verdict: str
    pairs_run: int
    flagged: bool = False
    blocked: bool = False
    differ: bool = False
    used_cand: list[float] = field(default_factory=list)


def fixed_plan(max_rounds: int) -> list[int]:
    tasks = [str(t) for t in range(TASKS)]
    return [int(u.task) for u in plan_units("iid", tasks, max_rounds, "1234", BATCH)]


def aligned_suite(rng: random.Random, plan: list[int]) -> Suite:
    """Effects that favour the candidate on the tasks the fixed plan draws early."""
    weight = [0.0] * TASKS
    for k, t in enumerate(plan[:300]):
        weight[t] += math.exp(-k / 60.0)
    mean = sum(weight) / TASKS
    sd = math.sqrt(sum((w - mean) ** 2 for w in weight) / TASKS) or 1.0
    z = [max(-2.0, min(2.0, (w - mean) / sd)) for w in weight]
    zm = sum(z) / TASKS
    effects = [-DELTA + 0.12 * (x - zm) for x in z]
    p_base = []
    for e in effects:
        lo, hi = max(0.05, -e), min(0.95, 1.0 - e)
        p_base.append(rng.uniform(lo, hi))
    return Suite(tuple(p_base), tuple(p + e for p, e in zip(p_base, effects, strict=True)))


def slo_suite(rng: random.Random) -> Suite:
    """Identical arms (Delta = 0); the candidate's true success rate is the SLO's limit."""
    p = [rng.uniform(0.3, 0.95) for _ in range(TASKS)]
    return Suite(tuple(p), tuple(p))


def one_sweep(case: Case, suite: Suite, rng: random.Random, plan: list[int] | None,
              max_pairs: int) -> Sweep:
    beta_test = BETA * (1 - SLO_BETA_SHARE) if case.new and case.slo else BETA
    test = PairedSequentialTest(DELTA, ALPHA, beta_test, LAM, math.ceil(max_pairs / BATCH),
                                True, per_pair=True)
    order = plan if plan is not None else [rng.randrange(TASKS) for _ in range(max_pairs)]
    rand = rng.random
    units: list[tuple[float | None, float | None]] = []
    run = 0
    decision = test.decision
    while decision.verdict == "continue" and run < max_pairs:
        diffs = []
        for t in order[run: run + BATCH]:
            u = rand()
            v = u if case.coupling and rand() < case.coupling else rand()
            c, b = float(u < suite.p_cand[t]), float(v < suite.p_base[t])
            vc: float | None = c
            if c == 0.0 and case.arm_loss and rand() < case.arm_loss:
                vc = 0.0 if case.new else None
            elif c == 0.0 and case.mnar_loss and rand() < case.mnar_loss:
                vc = None
            units.append((vc, b))
            if vc is not None:
                diffs.append(vc - b)
        run += BATCH
        decision = test.update(diffs)
    complete = [(c, b) for c, b in units if c is not None and b is not None]
    out = Sweep(decision.verdict, run, used_cand=[c for c, _b in complete[: decision.pairs]])
    lost_c = sum(1 for c, _b in units if c is None)
    if case.new:
        out.flagged = binomial_two_sided(lost_c, lost_c) < LOSS_TEST_LEVEL
    else:
        out.flagged = lost_c / (2 * len(units)) > 0.20
    if case.slo:
        limit = sum(suite.p_cand) / TASKS
        single = slo_breach(case, out.used_cand, [c for c, _b in complete], limit)
        out.blocked = decision.verdict == "regression" or (
            decision.verdict == "no_regression" and single)
        if case.shards:
            stage = stage_run(run, max_pairs)
            extra = stage_trials(order, suite, rng, run, stage)
            sharded = slo_breach(case, out.used_cand, [c for c, _b in complete] + extra, limit)
            out.differ = decision.verdict == "no_regression" and single != sharded
    return out


def stage_run(run: int, max_pairs: int) -> int:
    """Pairs a 2-stage sharded sweep has on disk when one process ran ``run``."""
    batches = math.ceil(max_pairs / BATCH)
    first = stage_bound(batches, 1, 2) * BATCH
    return first if run <= first else max_pairs


def stage_trials(order: list[int], suite: Suite, rng: random.Random, run: int,
                 stage: int) -> list[float]:
    """The candidate's trials a shard ran beyond the pairs the single process ran."""
    return [float(rng.random() < suite.p_cand[t]) for t in order[run:stage]]


def slo_breach(case: Case, used: list[float], on_disk: list[float], limit: float) -> bool:
    if not case.new:
        return bool(on_disk) and sum(on_disk) / len(on_disk) < limit
    bound = HoeffdingBound(BETA * SLO_BETA_SHARE)  # one bounded SLO configured
    for x in used:
        bound.add(x)
    b = bound.bounds
    return b is not None and b[1] < limit


def error_of(case: Case, s: Sweep) -> bool:
    if case.error == "ship":
        return s.verdict == "no_regression" and not s.flagged
    if case.error == "differ":
        return s.differ
    if case.slo:
        return s.blocked
    return s.verdict == "regression"


def run_case(job: tuple[int, int, int]) -> tuple[int, int, int, int]:
    index, n, seed = job
    case = CASES[index]
    rng = random.Random(seed)
    max_rounds = round_limit(fixed_sample_size(DELTA, 0.3, ALPHA, BETA), TASKS)
    max_pairs = max_rounds * TASKS
    plan = fixed_plan(max_rounds) if case.aligned else None
    errors = pairs = 0
    for k in range(n):
        suite_rng = random.Random(seed * 31 + k)
        if case.aligned:
            suite = aligned_suite(random.Random(7), plan or [])
        elif case.slo:
            suite = slo_suite(suite_rng)
        else:
            suite = make_suite(TASKS, case.truth, suite_rng, heterogeneity=0.05)
        s = one_sweep(case, suite, rng, plan if case.fixed_plan else None, max_pairs)
        errors += error_of(case, s)
        pairs += s.pairs_run
    return index, n, errors, pairs


def n_fixed(case: Case) -> float:
    """The fixed-sample design's pairs, with the case's suite variance (averaged over draws)."""
    total = 0.0
    for k in range(20):
        rng = random.Random(1000 + k)
        if case.aligned:
            suite = aligned_suite(random.Random(7), fixed_plan(16))
        elif case.slo:
            suite = slo_suite(rng)
        else:
            suite = make_suite(TASKS, case.truth, rng, heterogeneity=0.05)
        total += suite.within_variance(coupling=case.coupling)
    return fixed_sample_size(DELTA, total / 20, ALPHA, BETA)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="sweeps per case (default 2000)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=22)
    p.add_argument("--only", default="", help="run the cases whose name contains this")
    args = p.parse_args(argv)
    chosen = [i for i, c in enumerate(CASES) if args.only in c.name]
    chunks = 4
    jobs = [(i, args.n // chunks + (c < args.n % chunks), args.seed * 1_000_003 + 7919 * i + c)
            for i in chosen for c in range(chunks)]
    start = time.perf_counter()
    with multiprocessing.Pool(args.workers) as pool:
        parts = pool.map(run_case, jobs, chunksize=1)
    total: dict[int, list[int]] = {}
    for i, n, errors, pairs in parts:
        t = total.setdefault(i, [0, 0, 0])
        t[0] += n
        t[1] += errors
        t[2] += pairs
    print(f"delta {DELTA}, alpha {ALPHA}, beta {BETA}, {TASKS} tasks, batch {BATCH}; "
          f"{args.n:,} sweeps per case; {time.perf_counter() - start:.0f} s on "
          f"{args.workers} processes\n")
    print("| case | truth | error | rate [95 % interval] | bound | within | mean pairs run "
          "| share of fixed-sample pairs |")
    print("|---|---:|---|---:|---:|---|---:|---:|")
    ok = True
    for i in chosen:
        case, (n, errors, pairs) = CASES[i], total[i]
        lo, hi = wilson_interval(errors, n)
        level = {"ship": ALPHA, "block": BETA, "differ": 0.0}[case.error]
        bound = level + 3 * math.sqrt(level * (1 - level) / n)
        within = errors / n <= bound
        ok &= within or not case.new
        label = {"ship": "P(ship)", "block": "P(block)", "differ": "P(codes differ)"}[case.error]
        print(f"| {case.name} | {case.truth:+.2f} | {label} | {errors / n:.4f} "
              f"[{lo:.4f}, {hi:.4f}] | {bound:.4f} | {'yes' if within else 'NO'} | "
              f"{pairs / n:.1f} | {pairs / n / n_fixed(case):.3f} |")
    print(f"\nnew rows within their bounds: {'yes' if ok else 'NO'} (bound: level + 3 sd at N)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
