"""The fixed-sample design a sequential sweep is compared with (docs/statistics.md, "Sizing")."""

from __future__ import annotations

from gate.statistics.special import norm_ppf

__all__ = ["fixed_sample_size"]


def fixed_sample_size(delta: float, sigma2: float, alpha: float, beta: float) -> float:
    """Paired trials of a fixed-sample one-sided test: (z_a + z_b)^2 sigma^2 / delta^2."""
    if delta <= 0.0 or sigma2 < 0.0:
        raise ValueError("delta must be > 0 and sigma2 >= 0")
    z = norm_ppf(1.0 - alpha) + norm_ppf(1.0 - beta)
    return z * z * sigma2 / (delta * delta)
