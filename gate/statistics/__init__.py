"""Statistics of the gate: the sequential paired regression test and its companions.

- ``eprocess``: two one-sided betting e-processes deciding regression / no regression.
- ``design``: fixed-sample sizes, round limits, Wald's SPRT, group-sequential constants.
- ``reliability``: pass^k, pass@k, Wilson and Clopper-Pearson intervals, percentiles.
- ``simulate``: seeded simulation of whole sweeps (tests and ``bench/sequential.py``).
- ``special``: normal quantile and regularized incomplete beta in pure Python.
"""

from gate.statistics.design import (
    SequentialPlan,
    SprtDesign,
    exit_probability,
    fixed_design_rounds,
    fixed_sample_size,
    kelly_lam,
    obrien_fleming_bounds,
    obrien_fleming_constant,
    one_sample_fixed_n,
    optimal_betting_pairs,
    plan_sweep,
    pocock_constant,
    round_limit,
    sprt_bernoulli,
    sprt_simulate,
)
from gate.statistics.eprocess import (
    Decision,
    PairedSequentialTest,
    StatisticsParams,
    Thresholds,
    Verdict,
    lam_cap,
)
from gate.statistics.reliability import (
    PassK,
    clopper_pearson_interval,
    pass_at_k,
    pass_hat_k,
    pass_hat_k_curve,
    percentile,
    wilson_interval,
)
from gate.statistics.simulate import (
    SimOptions,
    Suite,
    SweepOutcome,
    SweepSummary,
    make_suite,
    simulate_many,
    simulate_sweep,
)
from gate.statistics.special import betainc, betainc_inv, norm_cdf, norm_ppf

__all__ = [
    "Decision",
    "PairedSequentialTest",
    "PassK",
    "SequentialPlan",
    "SimOptions",
    "SprtDesign",
    "StatisticsParams",
    "Suite",
    "SweepOutcome",
    "SweepSummary",
    "Thresholds",
    "Verdict",
    "betainc",
    "betainc_inv",
    "clopper_pearson_interval",
    "exit_probability",
    "fixed_design_rounds",
    "fixed_sample_size",
    "kelly_lam",
    "lam_cap",
    "make_suite",
    "norm_cdf",
    "norm_ppf",
    "obrien_fleming_bounds",
    "obrien_fleming_constant",
    "one_sample_fixed_n",
    "optimal_betting_pairs",
    "pass_at_k",
    "pass_hat_k",
    "pass_hat_k_curve",
    "percentile",
    "plan_sweep",
    "pocock_constant",
    "round_limit",
    "simulate_many",
    "simulate_sweep",
    "sprt_bernoulli",
    "sprt_simulate",
    "wilson_interval",
]
