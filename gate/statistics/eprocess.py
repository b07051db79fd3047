"""The sequential paired regression test: two one-sided betting e-processes.

Notation and the full argument: docs/statistics.md. D = Y_cand - Y_base in [-1, 1] for one
paired trial (same task, same seed), margin ``delta``, ``alpha`` = P(ship | true mean
difference <= -delta), ``beta`` = P(block | true mean difference >= 0).

With bets lam_i fixed before pair i was seen (predictable):

    K_rej = prod_i (1 - lam_rej_i * D_i)             reject (regression) when >= 1 / beta
    K_ok  = prod_i (1 + lam_ok_i * (D_i + delta))    accept (no regression) when >= 1 / alpha

Each is a nonnegative supermartingale under its null, and Ville's inequality bounds the
probability that it *ever* crosses 1/level by the level, so checks may be made at every valid
stopping point and a sweep may stop or be continued (multiplying e-values) at will. Two modes:

- ``per_pair=True`` (the default schedule, ``iid``): pairs are i.i.d. (task, seed) draws from the
  suite, so E[D_i | past] is the suite-average difference at every pair; each pair gets its own
  bet, computed from the pairs before it, and the test is checked after every pair. A batch given
  to ``update`` is consumed in order and stops at the first crossing.
- ``per_pair=False`` (schedule ``rounds``): a batch is one complete round over the suite, bet at a
  single lam and checked at its end; with trials independent given the task, by 1 + x <= e^x
  E[prod_t (1 + lam (D_t - m)) | past] <= exp(lam T (mean_t Delta_t - m)) <= 1 under the null.

Pairs lost to the provider are excluded (gate.engine.decision): this keeps validity when the
losses are missing completely at random; losses the arm caused are scored as its failures.

Bets (``plug_in=True``): the growth-optimal (Kelly) fraction at the design alternative (true
difference -delta for K_rej, 0 for K_ok) for the law of D on {-1, 0, 1} with that mean and the
variance v_hat, a shrunk running variance of D from earlier pairs only:
v_hat = (w0 v0 + n v_n) / (w0 + n), w0 = ``prior_weight`` (5 pairs). For K_rej that fraction is
delta / (v_hat + delta^2) exactly; for K_ok it is the root of a quadratic
(``_three_point_kelly``), not the second-order m / (v + m^2), which overshoots when the arms
are strongly correlated. The prior v0 = delta / lam - delta^2 makes the first bets the
configured ``lam`` (K_ok's within 0.001). Plug-in bets are clipped to ``bet_caps(delta)``: a
pair at the worst end keeps WORST_FACTOR (0.15) of the wealth. With ``per_pair`` each bet is then
moved to its landing point (``_landing_bet``): the neighbouring bet with which a whole number of
pairs (lost pairs for K_rej, ties for K_ok) takes the log e-value exactly to its threshold, so a
crossing does not waste growth past it; it depends on the e-value so far, fixed before the pair
like the rest. With ``adapt_mean=True`` the mean
is also estimated (shrunk towards delta); measured (bench/) it needs more pairs at the
boundaries, so it is off by default. ``plug_in=False`` bets the fixed ``lam``, clipped to
lam_cap(delta) < 1 / (1 + delta).

Both processes crossing together: the verdict is "regression" (the conservative one: a gate
blocks rather than ships on conflicting evidence). Either verdict still needs its own process
to cross, so both error bounds hold whatever the tie rule.

All arithmetic is on log e-values (sums of log1p), so neither underflow nor overflow can occur.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, cast

__all__ = [
    "Decision",
    "PairedSequentialTest",
    "StatisticsParams",
    "Thresholds",
    "Verdict",
    "bet_caps",
    "lam_cap",
]

Verdict = Literal["regression", "no_regression", "continue", "inconclusive"]
_VERDICTS: tuple[str, ...] = ("regression", "no_regression", "continue", "inconclusive")
_STATE_VERSION = 1
_LOG_MAX = 700.0  # exp(700) is finite; e-values are reported capped there


class StatisticsParams(Protocol):
    """What ``PairedSequentialTest.from_config`` reads (gate.config.schema.StatisticsConfig)."""

    @property
    def delta(self) -> float: ...
    @property
    def alpha(self) -> float: ...
    @property
    def beta(self) -> float: ...
    @property
    def lam(self) -> float: ...
    @property
    def max_rounds(self) -> int: ...


def lam_cap(delta: float) -> float:
    """Largest bet used: min(0.75, 0.9 / (1 + delta)); keeps every factor >= 0.25 and > 0."""
    return min(0.75, 0.9 / (1.0 + delta))


@dataclass(frozen=True)
class Thresholds:
    """Crossing levels of the two e-processes: reject = 1/beta, accept = 1/alpha."""

    reject: float
    accept: float


@dataclass(frozen=True)
class Decision:
    """The test's answer after a round.

    ``e_reject``/``e_accept`` are the e-values (capped at exp(700)); ``log_e_*`` are exact.
    ``lam_reject``/``lam_accept`` are the bets the *next* round will use (already fixed).
    """

    verdict: Verdict
    e_reject: float
    e_accept: float
    log_e_reject: float
    log_e_accept: float
    thresholds: Thresholds
    rounds: int
    pairs: int
    lam_reject: float
    lam_accept: float

    @property
    def decided(self) -> bool:
        """True when the verdict is final (anything but "continue")."""
        return self.verdict != "continue"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (thresholds nested)."""
        return asdict(self)


class PairedSequentialTest:
    """Two one-sided betting e-processes on paired differences, checked after each round.

    ``update(diffs)`` takes one round's differences D = Y_cand - Y_base (complete pairs only) and
    returns the ``Decision``. State round-trips through ``to_dict``/``from_dict``.
    """

    def __init__(
        self,
        delta: float = 0.10,
        alpha: float = 0.05,
        beta: float = 0.05,
        lam: float = 0.3,
        max_rounds: int = 8,
        plug_in: bool = True,
        *,
        adapt_mean: bool = False,
        prior_weight: float = 5.0,
        per_pair: bool = False,
    ) -> None:
        _check_params(delta, alpha, beta, lam, max_rounds, prior_weight)
        self.delta = float(delta)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.lam = float(lam)
        self.max_rounds = int(max_rounds)
        self.plug_in = bool(plug_in)
        self.adapt_mean = bool(adapt_mean)
        self.prior_weight = float(prior_weight)
        self.per_pair = bool(per_pair)
        self._log_rej_threshold = math.log(self.thresholds.reject)
        self._log_ok_threshold = math.log(self.thresholds.accept)
        self.rounds = 0
        self.pairs = 0
        self.log_e_reject = 0.0
        self.log_e_accept = 0.0
        self.sum_d = 0.0
        self.sum_d2 = 0.0
        self.verdict: Verdict = "continue"
        self.lam_reject, self.lam_accept = self._next_lams()

    @classmethod
    def from_config(
        cls, cfg: StatisticsParams, plug_in: bool = True, *, per_pair: bool = False
    ) -> PairedSequentialTest:
        """Build from a ``StatisticsConfig`` (delta, alpha, beta, lam, max_rounds)."""
        return cls(cfg.delta, cfg.alpha, cfg.beta, cfg.lam, cfg.max_rounds, plug_in,
                   per_pair=per_pair)

    @property
    def thresholds(self) -> Thresholds:
        """Crossing levels: 1/beta for K_rej, 1/alpha for K_ok."""
        return Thresholds(reject=1.0 / self.beta, accept=1.0 / self.alpha)

    @property
    def decision(self) -> Decision:
        """The current decision (after the last update)."""
        return Decision(
            verdict=self.verdict,
            e_reject=math.exp(min(self.log_e_reject, _LOG_MAX)),
            e_accept=math.exp(min(self.log_e_accept, _LOG_MAX)),
            log_e_reject=self.log_e_reject,
            log_e_accept=self.log_e_accept,
            thresholds=self.thresholds,
            rounds=self.rounds,
            pairs=self.pairs,
            lam_reject=self.lam_reject,
            lam_accept=self.lam_accept,
        )

    def update(self, round_diffs: Sequence[float]) -> Decision:
        """Multiply in one batch of paired differences and decide.

        Without ``per_pair`` the batch is a round: one bet for all of it, one check at its end.
        With ``per_pair`` the pairs are taken in order, each with its own bet (fixed from the
        pairs before it) and a check after it; pairs after a crossing are not consumed
        (``Decision.pairs`` counts the pairs the decision rests on). Either way the call counts
        as one check towards ``max_rounds``.

        Raises ValueError for a difference outside [-1, 1] (or NaN) -- before changing any
        state -- and RuntimeError when the test has already reached a verdict.
        """
        if self.verdict != "continue":
            raise RuntimeError(f"the test already reached a verdict: {self.verdict}")
        if self.per_pair:
            _round_sums(round_diffs, 0.0, 0.0, self.delta)  # validate all before any change
            for d in round_diffs:
                self._add(d)
                self.lam_reject, self.lam_accept = self._next_lams()
                if self._crossed():
                    break
        else:
            inc_rej, inc_ok, s1, s2 = _round_sums(
                round_diffs, self.lam_reject, self.lam_accept, self.delta
            )
            self.log_e_reject += inc_rej
            self.log_e_accept += inc_ok
            self.sum_d += s1
            self.sum_d2 += s2
            self.pairs += len(round_diffs)
        self.rounds += 1
        self.verdict = self._verdict()
        self.lam_reject, self.lam_accept = self._next_lams()
        return self.decision

    def _add(self, d: float) -> None:
        """One pair at the current bets (per-pair mode)."""
        self.log_e_reject += math.log1p(-self.lam_reject * d)
        self.log_e_accept += math.log1p(self.lam_accept * (d + self.delta))
        self.sum_d += d
        self.sum_d2 += d * d
        self.pairs += 1

    def _crossed(self) -> bool:
        return (
            self.log_e_reject >= self._log_rej_threshold
            or self.log_e_accept >= self._log_ok_threshold
        )

    def _verdict(self) -> Verdict:
        """Regression wins a tie (see the module docstring); the limit gives inconclusive."""
        if self.log_e_reject >= self._log_rej_threshold:
            return "regression"
        if self.log_e_accept >= self._log_ok_threshold:
            return "no_regression"
        if self.rounds >= self.max_rounds:
            return "inconclusive"
        return "continue"

    def _next_lams(self) -> tuple[float, float]:
        """Bets for the next round (pair), from earlier rounds (pairs) only: predictable."""
        if not self.plug_in:
            fixed = min(self.lam, lam_cap(self.delta))
            return fixed, fixed
        d, w0, n = self.delta, self.prior_weight, self.pairs
        v0 = d / self.lam - d * d
        mean = self.sum_d / n if n else 0.0
        v_n = max(self.sum_d2 / n - mean * mean, 0.0) if n else 0.0
        var = (w0 * v0 + n * v_n) / (w0 + n)
        if self.adapt_mean:
            m_rej = (w0 * d - self.sum_d) / (w0 + n)  # shrunk mean of -D
            m_ok = (w0 * d + self.sum_d + n * d) / (w0 + n)  # shrunk mean of D + delta
            cap = lam_cap(d)
            return _kelly(m_rej, var, cap), _kelly(m_ok, var, cap)
        rej_cap, ok_cap = bet_caps(d)
        lam_rej = _three_point_kelly(-1.0, 0.0, 1.0, d, var + d * d, rej_cap)
        lam_ok = _three_point_kelly(d - 1.0, d, d + 1.0, d, var + d * d, ok_cap)
        if not self.per_pair:
            return lam_rej, lam_ok
        return (
            _landing_bet(lam_rej, rej_cap, self._log_rej_threshold - self.log_e_reject, 1.0,
                         _three_point_law(-1.0, 0.0, 1.0, d, var + d * d)),
            _landing_bet(lam_ok, ok_cap, self._log_ok_threshold - self.log_e_accept, d,
                         _three_point_law(d - 1.0, d, d + 1.0, d, var + d * d)),
        )

    def extended(self, max_rounds: int) -> PairedSequentialTest:
        """A copy allowed to run to ``max_rounds`` (continue an inconclusive sweep).

        Valid: Ville's inequality covers the whole, unbounded sequence of round checks.
        """
        if self.verdict in ("regression", "no_regression"):
            raise ValueError("a decided test cannot be extended")
        if max_rounds < self.rounds:
            raise ValueError("max_rounds below the rounds already run")
        data = self.to_dict()
        data["params"]["max_rounds"] = max_rounds
        data["state"]["verdict"] = "continue"
        new = PairedSequentialTest.from_dict(data)
        new.verdict = new._verdict()
        return new

    def to_dict(self) -> dict[str, Any]:
        """Serializable state (JSON floats are exact through repr round-trip)."""
        return {
            "version": _STATE_VERSION,
            "params": {
                "delta": self.delta,
                "alpha": self.alpha,
                "beta": self.beta,
                "lam": self.lam,
                "max_rounds": self.max_rounds,
                "plug_in": self.plug_in,
                "adapt_mean": self.adapt_mean,
                "prior_weight": self.prior_weight,
                "per_pair": self.per_pair,
            },
            "state": {
                "rounds": self.rounds,
                "pairs": self.pairs,
                "log_e_reject": self.log_e_reject,
                "log_e_accept": self.log_e_accept,
                "sum_d": self.sum_d,
                "sum_d2": self.sum_d2,
                "verdict": self.verdict,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairedSequentialTest:
        """Rebuild a test from ``to_dict`` output; raises ValueError on a malformed dict."""
        try:
            if data["version"] != _STATE_VERSION:
                raise ValueError(f"unsupported state version {data['version']!r}")
            p, s = data["params"], data["state"]
            test = cls(
                p["delta"],
                p["alpha"],
                p["beta"],
                p["lam"],
                p["max_rounds"],
                p["plug_in"],
                adapt_mean=p["adapt_mean"],
                prior_weight=p["prior_weight"],
                per_pair=bool(p.get("per_pair", False)),
            )
            test.rounds, test.pairs = int(s["rounds"]), int(s["pairs"])
            test.log_e_reject = float(s["log_e_reject"])
            test.log_e_accept = float(s["log_e_accept"])
            test.sum_d, test.sum_d2 = float(s["sum_d"]), float(s["sum_d2"])
            verdict = s["verdict"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed sequential-test state: {exc!r}") from exc
        if verdict not in _VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}")
        test.verdict = cast(Verdict, verdict)
        test.lam_reject, test.lam_accept = test._next_lams()
        return test


WORST_FACTOR = 0.15  # a plug-in bet never loses more than 85 % of the wealth on one pair


def bet_caps(delta: float) -> tuple[float, float]:
    """Largest plug-in bets (K_rej, K_ok): a pair at the worst end (D = 1 for K_rej, D = -1
    for K_ok) keeps WORST_FACTOR of the wealth: 1 - cap * 1 and 1 - cap * (1 - delta)."""
    return 1.0 - WORST_FACTOR, (1.0 - WORST_FACTOR) / (1.0 - delta)


def _three_point_kelly(lo: float, mid: float, hi: float, mean: float, second: float,
                       cap: float) -> float:
    """Growth-optimal bet on X taking the values lo < mid < hi (hi - mid = mid - lo = 1) with
    E[X] = mean and E[X^2] = second: the root in (0, cap] of
    E[X / (1 + lam X)] = 0, i.e. of  lo mid hi lam^2 + (S mean - second) lam + mean = 0
    (S = lo + mid + hi), clipped to [0, cap]. ``second`` is raised to what the three values
    allow for that mean (a law on lo, mid, hi)."""
    if mean <= 0.0:
        return 0.0
    second = max(second, mid * mid + abs(mean - mid) * (hi - mid) + (mean - mid) * 2 * mid)
    a, b = lo * mid * hi, (lo + mid + hi) * mean - second
    if a > 0.0:
        raise ValueError("three-point bet: lo mid hi must be <= 0")
    if a == 0.0:  # mid = 0: the root of b lam + mean
        root = -mean / b if b < 0.0 else cap
    else:  # a < 0 < mean: one negative and one positive root, the larger
        root = (-b - math.sqrt(b * b - 4.0 * a * mean)) / (2.0 * a)
    return min(max(root, 0.0), cap)


def _three_point_law(lo: float, mid: float, hi: float, mean: float,
                     second: float) -> tuple[tuple[float, float], ...]:
    """The law on lo < mid < hi (one apart) with E[X] = mean and E[X^2] = second, as
    (value, probability) pairs; ``second`` is moved into what the three values allow."""
    mu = mean - mid  # Y = X - mid on {-1, 0, 1}: E[Y] = mu, E[Y^2] = s
    s = min(max(second - mid * mid - 2.0 * mid * mu, abs(mu)), 1.0)
    return ((hi, (s + mu) / 2.0), (mid, 1.0 - s), (lo, (s - mu) / 2.0))


_LANDING_MARGIN = 1e-12  # each landing step a little long, so rounding never leaves it short


def _landing_bet(lam: float, cap: float, gap: float, unit: float,
                 law: tuple[tuple[float, float], ...]) -> float:
    """A bet next to ``lam`` (<= ``cap``) with which a whole number of pairs of increment
    ``unit`` takes the log e-value exactly to its threshold, ``gap`` above it
    (docs/statistics.md, "Landing on the threshold").

    With k = floor(gap / log(1 + lam unit)), the bets that need k and k + 1 such pairs are
    expm1(gap / k) / unit >= lam >= expm1(gap / (k + 1)) / unit; of those within ``cap`` (the
    second always is) the one with the larger growth E log(1 + bet X) under ``law`` is taken.
    Within one pair of the threshold (k = 0) that is the smallest bet that crosses on such a
    pair. Uses ``lam`` and the log e-value, both fixed before the next pair: predictable.
    """
    steps = gap / math.log1p(lam * unit) if lam > 0.0 and gap > 0.0 else math.inf
    if not math.isfinite(steps):  # no bet, a crossed threshold, or a vanishing bet
        return lam
    k = math.floor(steps)
    options = [math.expm1(gap / j + _LANDING_MARGIN) / unit for j in (k, k + 1) if j >= 1]
    options = [x for x in options if x <= cap] or [min(options[-1], cap)]
    return max(options, key=lambda x: sum(p * math.log1p(x * v) for v, p in law if p > 0.0))


def _kelly(mean: float, var: float, cap: float) -> float:
    """Growth-optimal bet mean / (var + mean^2) clipped to [0, cap]."""
    if mean <= 0.0:
        return 0.0
    return min(mean / (var + mean * mean), cap)


def _round_sums(
    diffs: Sequence[float], lam_rej: float, lam_ok: float, delta: float
) -> tuple[float, float, float, float]:
    """log K_rej and log K_ok increments, sum D and sum D^2 over one round (validates D)."""
    log1p = math.log1p
    inc_rej = inc_ok = s1 = s2 = 0.0
    for d in diffs:
        if not -1.0 <= d <= 1.0:  # also rejects NaN
            raise ValueError(f"paired difference {d!r} outside [-1, 1]")
        inc_rej += log1p(-lam_rej * d)
        inc_ok += log1p(lam_ok * (d + delta))
        s1 += d
        s2 += d * d
    return inc_rej, inc_ok, s1, s2


def _check_params(
    delta: float, alpha: float, beta: float, lam: float, max_rounds: int, prior_weight: float
) -> None:
    if not 0.0 < delta < 1.0:
        raise ValueError("delta must be in (0, 1)")
    if not (0.0 < alpha < 1.0 and 0.0 < beta < 1.0):
        raise ValueError("alpha and beta must be in (0, 1)")
    if not 0.0 < lam < 1.0 / (1.0 + delta):
        raise ValueError("lam must be in (0, 1 / (1 + delta))")
    if max_rounds < 1:
        raise ValueError("max_rounds must be >= 1")
    if prior_weight <= 0.0:
        raise ValueError("prior_weight must be > 0")
