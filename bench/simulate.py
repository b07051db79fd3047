"""Seeded simulation of whole paired sweeps, for ``bench/sequential.py`` and the error-rate tests.

Research code: the product does not import it.

A suite has T tasks of mixed difficulty: the baseline's success probability p_t and the candidate's
q_t = p_t + e_t, where the per-task effects e_t are heterogeneous (mean_diff + heterogeneity * z_t
with z_t centred uniform on [-1, 1]) and their suite mean is *exactly* ``mean_diff``, so boundary
nulls are simulated at the boundary. p_t is drawn uniformly from ``p_range`` intersected with the
range that keeps q_t in [0, 1].

Scores: "binary" (Y ~ Bernoulli; with ``coupling`` rho the two arms share the uniform draw with
probability rho, as a shared task seed would) or "partial" (Y ~ Beta(c p, c (1 - p)), mean p,
partial credit in [0, 1]). ``loss_rate`` drops a pair at random (a provider error), so rounds may
hold fewer than T differences. Schedule "round" runs every task once per round and checks at
round ends; "iid" draws (task, seed) i.i.d. from the suite and runs ``batch`` pairs at a time; the
test checks after every batch, or after every pair when it was built with ``per_pair=True`` (every
i.i.d. pair is a valid stopping point for the suite-average null). ``pairs_run`` counts the pairs
run, including those run in the deciding batch after the pair that decided.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gate.statistics.eprocess import PairedSequentialTest, Verdict

__all__ = [
    "Schedule",
    "Scores",
    "SimOptions",
    "Suite",
    "SweepOutcome",
    "SweepSummary",
    "make_suite",
    "simulate_many",
    "simulate_sweep",
]

Scores = Literal["binary", "partial"]
Schedule = Literal["round", "iid"]


@dataclass(frozen=True)
class Suite:
    """Per-task success probabilities of the baseline and the candidate arm."""

    p_base: tuple[float, ...]
    p_cand: tuple[float, ...]

    @property
    def n_tasks(self) -> int:
        return len(self.p_base)

    @property
    def mean_diff(self) -> float:
        """The true suite-mean difference mean_t (q_t - p_t)."""
        return sum(q - p for p, q in zip(self.p_base, self.p_cand, strict=True)) / self.n_tasks

    def within_variance(
        self, scores: Scores = "binary", coupling: float = 0.0, concentration: float = 2.0
    ) -> float:
        """mean_t Var(D_t): the variance a stratified fixed-sample design pays per trial.

        Binary: p(1-p) + q(1-q) - 2 rho (min(p, q) - p q). Partial: (p(1-p) + q(1-q)) / (c + 1).
        """
        total = 0.0
        for p, q in zip(self.p_base, self.p_cand, strict=True):
            if scores == "binary":
                total += p * (1 - p) + q * (1 - q) - 2 * coupling * (min(p, q) - p * q)
            else:
                total += (p * (1 - p) + q * (1 - q)) / (concentration + 1.0)
        return total / self.n_tasks


def make_suite(
    n_tasks: int,
    mean_diff: float,
    rng: random.Random,
    *,
    heterogeneity: float = 0.05,
    p_range: tuple[float, float] = (0.05, 0.95),
) -> Suite:
    """Draw a suite whose true mean difference is exactly ``mean_diff`` (see module docstring)."""
    if n_tasks < 1:
        raise ValueError("n_tasks must be >= 1")
    z = [rng.uniform(-1.0, 1.0) for _ in range(n_tasks)]
    z_mean = sum(z) / n_tasks
    effects = [mean_diff + heterogeneity * (x - z_mean) for x in z]
    lo, hi = p_range
    p_base: list[float] = []
    for e in effects:
        a, b = max(lo, -e), min(hi, 1.0 - e)
        if a > b:
            raise ValueError("effect too large for p_range")
        p_base.append(rng.uniform(a, b))
    p_cand = [min(max(p + e, 0.0), 1.0) for p, e in zip(p_base, effects, strict=True)]
    return Suite(tuple(p_base), tuple(p_cand))


@dataclass(frozen=True)
class SimOptions:
    """How trials are scored, lost and scheduled in a simulated sweep (module docstring)."""

    scores: Scores = "binary"
    coupling: float = 0.0
    loss_rate: float = 0.0
    schedule: Schedule = "round"
    batch: int = 1
    concentration: float = 2.0


@dataclass(frozen=True)
class SweepOutcome:
    """How one simulated sweep ended."""

    verdict: Verdict
    rounds: int
    pairs: int
    log_e_reject: float
    log_e_accept: float
    pairs_run: int = 0


def _pair_sampler(
    suite: Suite, rng: random.Random, scores: Scores, coupling: float, concentration: float
) -> Callable[[int], float]:
    """A function task -> one paired difference D = Y_cand - Y_base."""
    rand, beta = rng.random, rng.betavariate

    def binary(t: int) -> float:
        u = rand()
        v = u if coupling and rand() < coupling else rand()
        return float(u < suite.p_cand[t]) - float(v < suite.p_base[t])

    def partial(t: int) -> float:
        return _beta_score(beta, suite.p_cand[t], concentration) - _beta_score(
            beta, suite.p_base[t], concentration
        )

    return binary if scores == "binary" else partial


def _beta_score(beta: Callable[[float, float], float], p: float, c: float) -> float:
    if p <= 0.0 or p >= 1.0:
        return p
    return beta(c * p, c * (1.0 - p))


def simulate_sweep(
    suite: Suite,
    test: PairedSequentialTest,
    rng: random.Random,
    options: SimOptions = SimOptions(),
) -> SweepOutcome:
    """Run one sweep to its verdict; ``test`` must be fresh (it is consumed).

    With ``schedule="iid"`` the test's ``max_rounds`` counts batches (pass T * round limit /
    batch); ``rounds`` in the outcome is then pairs / T rounded up.
    """
    o = options
    sample = _pair_sampler(suite, rng, o.scores, o.coupling, o.concentration)
    n_tasks, rand, randrange, loss = suite.n_tasks, rng.random, rng.randrange, o.loss_rate
    decision = test.decision
    run = 0
    while decision.verdict == "continue":
        if o.schedule == "round":
            tasks: range | list[int] = range(n_tasks)
        else:
            tasks = [randrange(n_tasks) for _ in range(o.batch)]
        diffs = [sample(t) for t in tasks if not (loss and rand() < loss)]
        run += len(diffs)
        decision = test.update(diffs)
    rounds = decision.rounds if o.schedule == "round" else -(-decision.pairs // n_tasks)
    return SweepOutcome(
        decision.verdict, rounds, decision.pairs, decision.log_e_reject, decision.log_e_accept, run
    )


@dataclass(frozen=True)
class SweepSummary:
    """Rates and means over many simulated sweeps."""

    n: int
    regression: float
    no_regression: float
    inconclusive: float
    mean_pairs: float
    mean_rounds: float


def simulate_many(
    suite: Suite,
    make_test: Callable[[], PairedSequentialTest],
    n_sweeps: int,
    seed: int,
    options: SimOptions = SimOptions(),
) -> SweepSummary:
    """``n_sweeps`` seeded sweeps of ``suite`` with one ``random.Random(seed)`` stream."""
    rng = random.Random(seed)
    counts = {"regression": 0, "no_regression": 0, "inconclusive": 0}
    pairs = rounds = 0
    for _ in range(n_sweeps):
        out = simulate_sweep(suite, make_test(), rng, options)
        counts[out.verdict] += 1
        pairs += out.pairs
        rounds += out.rounds
    return SweepSummary(
        n=n_sweeps,
        regression=counts["regression"] / n_sweeps,
        no_regression=counts["no_regression"] / n_sweeps,
        inconclusive=counts["inconclusive"] / n_sweeps,
        mean_pairs=pairs / n_sweeps,
        mean_rounds=rounds / n_sweeps,
    )
