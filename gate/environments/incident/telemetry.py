"""Deterministic logs and metrics of one simulated service.

Everything here is a pure function of (stable seed, service, phase): the same fixture and seed
give the same lines, byte for byte, however often and in whatever order they are asked for.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from gate.environments.common import stable_int
from gate.environments.incident.model import Number, Service

LOG_WINDOW_S = 900  # logs cover the quarter hour before the incident was opened


def _rng(seed: int, service: str, what: str) -> random.Random:
    return random.Random(stable_int(seed, service, what))


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def log_lines(seed: int, name: str, service: Service, started_at: datetime) -> list[str]:
    """The service's log before any action: its events, shuffled and timestamped."""
    rng = _rng(seed, name, "logs")
    events = [(e.level, e.message) for e in service.logs for _ in range(e.count)]
    rng.shuffle(events)
    offsets = sorted(rng.sample(range(1, LOG_WINDOW_S), len(events)))
    lines = []
    for (level, message), offset in zip(events, offsets, strict=True):
        at = started_at - timedelta(seconds=LOG_WINDOW_S - offset)
        lines.append(f"{_stamp(at)} {level} {message} req={rng.getrandbits(24):06x}")
    return lines


def action_line(started_at: datetime, index: int, message: str) -> str:
    """A log line written by an action of the agent (the ``index``-th action)."""
    return f"{_stamp(started_at + timedelta(seconds=60 * (index + 1)))} INFO {message}"


def _jitter(value: Number, rng: random.Random) -> Number:
    if value == 0:
        return value
    moved = value * (1 + rng.uniform(-0.03, 0.03))
    return round(moved) if isinstance(value, int) else round(moved, 2)


def metrics_now(seed: int, name: str, values: dict[str, Number], phase: str) -> dict[str, Number]:
    """Current metric readings: the given values with a small deterministic jitter."""
    rng = _rng(seed, name, f"metrics:{phase}")
    return {key: _jitter(values[key], rng) for key in sorted(values)}
