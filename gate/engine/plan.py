"""The plan of a run: which paired units run, and in which batches the decision is read.

A unit is one (index, task): every arm runs it with the same trial seed. Two schedules:

- ``iid`` (default): unit k runs a task drawn uniformly, with replacement, from the suite,
  drawn from the run's plan salt: a random value drawn when the run starts and recorded in
  the manifest (``plan_salt``), so every run meets a fresh plan, and the plan and the order
  in which the decision consumes the pairs are fixed before any call. The decision is
  checked after every pair (docs/statistics.md: each i.i.d. draw is a valid stopping point
  for the suite-average null);
  ``batch`` units run at once between two reads of the decision, so up to ``batch - 1`` pairs
  may run after the one that decided. ``max_rounds`` x tasks units are planned.
- ``rounds``: round r runs every task once; the decision is checked after each round. The
  manifest's scope is arms x tasks x rounds.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from gate.records import PlannedScope


@dataclass(frozen=True)
class Unit:
    index: int  # the round (rounds) or the draw number (iid); part of the trial id
    task: str
    batch: int  # the decision check this unit belongs to (1-based)
    occurrence: int = 0  # this is the task's occurrence-th unit in the plan (1-based)

    def trial_id(self, arm: str) -> str:
        return f"{arm}/{self.task}/r{self.index}"


def new_salt() -> str:
    """A fresh plan salt (64 random bits, hex): drawn once when a run starts."""
    return secrets.token_hex(8)


def _draw(salt: str, k: int, n: int) -> int:
    digest = hashlib.sha256(f"iid|{salt}|{k}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n


def plan_units(
    schedule: str, tasks: list[str], max_rounds: int, salt: str, batch: int
) -> list[Unit]:
    """The planned units. ``salt`` draws the iid plan (a run recorded before plan salts
    existed drew it from ``str(run seed)``); the rounds plan does not depend on it."""
    if schedule == "iid":
        n = max_rounds * len(tasks)
        return _numbered([(k, tasks[_draw(salt, k, len(tasks))], (k - 1) // batch + 1)
                          for k in range(1, n + 1)])
    return _numbered([(r, task, r) for r in range(1, max_rounds + 1) for task in tasks])


def _numbered(units: list[tuple[int, str, int]]) -> list[Unit]:
    """Units with their occurrence: the trial seed and baseline reuse are keyed by
    (task, occurrence), never by the position in the plan, so two runs with different plans
    give the j-th unit of a task the same seed (and can share its baseline trial)."""
    seen: dict[str, int] = {}
    out = []
    for index, task, batch in units:
        seen[task] = seen.get(task, 0) + 1
        out.append(Unit(index, task, batch, seen[task]))
    return out


def units_of(scope: PlannedScope) -> list[Unit]:
    """The planned units recorded in a manifest's scope."""
    return _numbered([(i, t, b) for i, t, b in scope.units])


def batches(units: list[Unit]) -> list[list[Unit]]:
    out: dict[int, list[Unit]] = {}
    for unit in units:
        out.setdefault(unit.batch, []).append(unit)
    return [out[b] for b in sorted(out)]
