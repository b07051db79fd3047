"""Benchmark of the sequential paired regression test by simulation of whole sweeps.

For each variant of the test and each true suite-mean difference it simulates ``--n`` seeded
sweeps of a ``--tasks``-task suite of mixed difficulty with heterogeneous per-task effects and
prints the verdict rates, the mean paired trials and rounds to a decision, and the trials as a
fraction of the fixed-sample design with the same errors, n = (z_a + z_b)^2 sigma^2 / delta^2
(sigma^2 = the suite's mean within-task variance of D, which a stratified fixed design pays).

Targets (REFERENCE.md): error at each boundary null <= alpha + 3 sqrt(alpha (1 - alpha) / N)
(0.0565 at 0.05 and N 10,000); mean trials <= 0.6 of the fixed-sample design.

    .venv/bin/python bench/sequential.py            # 10,000 sweeps per cell, 2 processes
    .venv/bin/python bench/sequential.py --n 2000   # quicker
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gate.statistics import (
    PairedSequentialTest,
    SimOptions,
    Suite,
    fixed_sample_size,
    make_suite,
    round_limit,
    simulate_sweep,
)


@dataclass(frozen=True)
class Variant:
    """One way of running the test."""

    name: str
    plug_in: bool
    adapt_mean: bool = False
    batch: int = 0  # 0: a round over every task, checked at round ends; b: i.i.d. batches of b


VARIANTS = (
    Variant("fixed lam, round checks", plug_in=False),
    Variant("plug-in lam, round checks", plug_in=True),
    Variant("plug-in mean+var per process, rounds", plug_in=True, adapt_mean=True),
    Variant("plug-in lam, iid pairs, check each 8", plug_in=True, batch=8),
    Variant("plug-in lam, iid pairs, check each 1", plug_in=True, batch=1),
)


@dataclass(frozen=True)
class Job:
    variant: Variant
    scenario: int
    suite: Suite
    n_sweeps: int
    seed: int
    args: argparse.Namespace


def run_job(job: Job) -> tuple[str, int, dict[str, int], int, int]:
    """Simulate one chunk of sweeps; returns verdict counts and total pairs and rounds."""
    a, v, t = job.args, job.variant, job.suite.n_tasks
    if v.batch:
        options = SimOptions(a.scores, a.coupling, schedule="iid", batch=v.batch)
        limit = math.ceil(a.max_rounds * t / v.batch)
    else:
        options = SimOptions(a.scores, a.coupling)
        limit = a.max_rounds
    rng = random.Random(job.seed)
    counts = {"regression": 0, "no_regression": 0, "inconclusive": 0}
    pairs = rounds = 0
    for _ in range(job.n_sweeps):
        test = PairedSequentialTest(
            a.delta, a.alpha, a.beta, a.lam, limit, v.plug_in, adapt_mean=v.adapt_mean
        )
        out = simulate_sweep(job.suite, test, rng, options)
        counts[out.verdict] += 1
        pairs += out.pairs
        rounds += out.rounds
    return v.name, job.scenario, counts, pairs, rounds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="sweeps per variant and truth")
    p.add_argument("--tasks", type=int, default=50)
    p.add_argument("--delta", type=float, default=0.10)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--beta", type=float, default=0.05)
    p.add_argument("--lam", type=float, default=0.3, help="fixed bet / first plug-in bet")
    p.add_argument("--max-rounds", type=int, default=0, help="0: ceil(2 n_fixed / T)")
    p.add_argument("--scores", choices=("binary", "partial"), default="binary")
    p.add_argument("--coupling", type=float, default=0.0, help="P(arms share the draw)")
    p.add_argument("--heterogeneity", type=float, default=0.05, help="spread of task effects")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=20_240_601)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    d = args.delta
    truths = (-2 * d, -d, -d / 2, 0.0, d)
    suites = [
        make_suite(args.tasks, m, random.Random(args.seed + i), heterogeneity=args.heterogeneity)
        for i, m in enumerate(truths)
    ]
    sigma2 = [s.within_variance(args.scores, args.coupling) for s in suites]
    n_fix = [fixed_sample_size(d, v, args.alpha, args.beta) for v in sigma2]
    if not args.max_rounds:
        args.max_rounds = round_limit((n_fix[1] + n_fix[3]) / 2, args.tasks)
    print_header(args, sigma2, n_fix)
    results = simulate_all(args, suites)
    print_table(args, truths, results, n_fix)
    return print_verdict(args, results, n_fix)


def simulate_all(
    args: argparse.Namespace, suites: list[Suite]
) -> dict[tuple[str, int], tuple[dict[str, int], int, int]]:
    chunks = 10
    jobs = [
        Job(
            v,
            i,
            suite,
            args.n // chunks + (c < args.n % chunks),
            args.seed * 7919 + 97 * i + c,
            args,
        )
        for v in VARIANTS
        for i, suite in enumerate(suites)
        for c in range(chunks)
    ]
    start = time.perf_counter()
    with multiprocessing.Pool(args.workers) as pool:
        parts = pool.map(run_job, jobs, chunksize=1)
    total: dict[tuple[str, int], tuple[dict[str, int], int, int]] = {}
    for name, scen, counts, pairs, rounds in parts:
        old = total.get(
            (name, scen), ({"regression": 0, "no_regression": 0, "inconclusive": 0}, 0, 0)
        )
        merged = {k: old[0][k] + counts[k] for k in counts}
        total[(name, scen)] = (merged, old[1] + pairs, old[2] + rounds)
    print(
        f"simulated {len(VARIANTS) * len(suites) * args.n:,} sweeps in "
        f"{time.perf_counter() - start:.0f} s on {args.workers} processes\n"
    )
    return total


def print_header(args: argparse.Namespace, sigma2: list[float], n_fix: list[float]) -> None:
    print(
        f"sequential paired test: delta {args.delta}, alpha {args.alpha}, beta {args.beta}, "
        f"{args.tasks} tasks, {args.scores} scores, coupling {args.coupling}, "
        f"lam {args.lam}, max rounds {args.max_rounds}, N {args.n:,} sweeps per cell"
    )
    print(
        f"within-task Var(D): {sigma2[1]:.3f} at -delta, {sigma2[3]:.3f} at 0; fixed-sample "
        f"design n = {n_fix[1]:.0f} / {n_fix[3]:.0f} pairs "
        f"({math.ceil(n_fix[1] / args.tasks)} / {math.ceil(n_fix[3] / args.tasks)} rounds)"
    )


def print_table(
    args: argparse.Namespace,
    truths: tuple[float, ...],
    results: dict[tuple[str, int], tuple[dict[str, int], int, int]],
    n_fix: list[float],
) -> None:
    print(
        f"{'variant':38s} {'truth':>6s} {'P(reg)':>7s} {'P(ok)':>7s} {'P(inc)':>7s} "
        f"{'pairs':>7s} {'rounds':>6s} {'/fixed':>6s}"
    )
    for v in VARIANTS:
        for i, truth in enumerate(truths):
            counts, pairs, rounds = results[(v.name, i)]
            n = args.n
            ratio = f"{pairs / n / n_fix[i]:6.3f}" if i in (1, 3) else ""
            print(
                f"{v.name:38s} {truth:+6.2f} {counts['regression'] / n:7.4f} "
                f"{counts['no_regression'] / n:7.4f} {counts['inconclusive'] / n:7.4f} "
                f"{pairs / n:7.1f} {rounds / n:6.2f} {ratio:>6s}"
            )
        print()


def print_verdict(
    args: argparse.Namespace,
    results: dict[tuple[str, int], tuple[dict[str, int], int, int]],
    n_fix: list[float],
) -> int:
    n = args.n
    lim_a = args.alpha + 3 * math.sqrt(args.alpha * (1 - args.alpha) / n)
    lim_b = args.beta + 3 * math.sqrt(args.beta * (1 - args.beta) / n)
    print(
        f"summary (targets: error at -delta <= {lim_a:.4f}, at 0 <= {lim_b:.4f}; "
        "trials <= 0.6 of the fixed design)"
    )
    ok_all = True
    for v in VARIANTS:
        (c_m, p_m, r_m), (c_0, p_0, r_0) = results[(v.name, 1)], results[(v.name, 3)]
        err_a, err_b = c_m["no_regression"] / n, c_0["regression"] / n
        frac = (p_m / n / n_fix[1] + p_0 / n / n_fix[3]) / 2
        valid = err_a <= lim_a and err_b <= lim_b
        ok_all &= valid
        print(
            f"  {v.name:38s} error {err_a:.4f} / {err_b:.4f} {'ok ' if valid else 'BAD'}  "
            f"power {c_m['regression'] / n:.3f} / {c_0['no_regression'] / n:.3f}  "
            f"rounds {r_m / n:.2f} / {r_0 / n:.2f}  trials/fixed {frac:.3f} "
            f"{'<= 0.6' if frac <= 0.6 else '> 0.6'}"
        )
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
