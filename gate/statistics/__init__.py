"""Statistics of the gate: the sequential paired regression test and its companions.

- ``eprocess``: two one-sided betting e-processes deciding regression / no regression.
- ``sizing``: the fixed-sample design a sweep is compared with.
- ``reliability``: pass^k, pass@k, Wilson and Clopper-Pearson intervals, percentiles.
- ``special``: normal quantile and regularized incomplete beta in pure Python.

The reasoning behind all of it is in docs/statistics.md. Simulation and the reference designs
(Wald's SPRT, group-sequential constants) are research code and live in ``bench/``.
"""

from gate.statistics.eprocess import (
    Decision,
    PairedSequentialTest,
    StatisticsParams,
    Thresholds,
    Verdict,
    bet_caps,
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
from gate.statistics.sizing import fixed_sample_size
from gate.statistics.special import betainc, betainc_inv, norm_cdf, norm_ppf

__all__ = [
    "Decision",
    "PairedSequentialTest",
    "PassK",
    "StatisticsParams",
    "Thresholds",
    "Verdict",
    "bet_caps",
    "betainc",
    "betainc_inv",
    "clopper_pearson_interval",
    "fixed_sample_size",
    "lam_cap",
    "norm_cdf",
    "norm_ppf",
    "pass_at_k",
    "pass_hat_k",
    "pass_hat_k_curve",
    "percentile",
    "wilson_interval",
]
