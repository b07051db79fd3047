"""One run's lifecycle, shared by ``gate run``, ``gate sweep``, a shard of a sweep and the runs of
``gate smoke`` (docs/design.md, "The run session"). A command keeps only which cells it
schedules and when it stops; everything around that is here, once:

    RunSession(spec)      every arm's API key is set (said first, before any other check)
    .prepare()            a new run directory, or the run to resume (checked, or continued with
                          a longer round limit); the budget; the comparison ledger's check
    .declare()            manifest.json, written once (a resumed run keeps its own)
    .execute(schedule)    the providers opened, the manifest declared, the engine built, the
                          command's schedule run, the engine closed; a circuit breaker while
                          the providers open is a halt before the first task
    .finish(outcome)      stop.json, then results.json or PARTIAL-RESULTS.json derived from the
                          directory alone (a shard leaves that to ``gate merge``)

The budget has one formula: the ceiling's share (1/N for one of N shards) less what the run
directory's audit log says the run has already spent (``RunDir.spent_usd``; 0 for a new run).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gate.agent.persistent import ProgramPool
from gate.connect import ProviderOptions, check_api_keys, open_providers
from gate.engine import ledger
from gate.engine.loop import in_event_loop
from gate.engine.notices import Notices
from gate.engine.rundir import finish_results
from gate.engine.runner import Arm, Engine, EngineOptions, now_iso
from gate.errors import CircuitBreakerError, ConfigError, HaltError, PausedError, ResumeError
from gate.project.load import Project
from gate.providers.budget import Budget
from gate.records import (
    BudgetSnapshot,
    Comparison,
    Continuation,
    HaltRecord,
    Manifest,
    Results,
)
from gate.rundir import RESULTS, RunDir, read_results

T = TypeVar("T")

# The command's part of a run: given the engine and the manifest, run cells until it stops;
# returns why it stopped before a decision (None: it ran out of cells, decided, or halted).
Schedule = Callable[[Engine, Manifest], Awaitable[str | None]]


@dataclass(frozen=True)
class SessionSpec:
    """What a command runs, where, and how its manifest is made."""

    project: Project
    arms: list[Arm]
    out: Path
    seed: int
    ceiling_usd: float  # the budget ceiling of the whole run (all shards together)
    manifest: Callable[[BudgetSnapshot], Manifest]  # the manifest of a new run, given its budget
    configured_by: str | None = None  # what set the ceiling, recorded in the manifest
    shares: int = 1  # one of N shards: 1/N of the ceiling and of each provider's limits
    resumable: bool = False  # the command has --resume (a sweep); ``resume`` asks for it
    resume: bool = False
    ledger: Path | None = None  # the comparison ledger (gate.engine.ledger)
    force_restart: bool = False
    provider_options: ProviderOptions | None = None  # the smoke test's simulated 402
    heartbeat_interval_s: float | None = None  # else the configured one
    pause_file: Path | None = None


@dataclass(frozen=True)
class Outcome:
    """How the command's schedule ended: the halt, and why it stopped before a decision."""

    halt: HaltRecord | None
    stopped: str | None = None


class RunSession:
    """The lifecycle of one run directory (see the module's docstring for the order)."""

    def __init__(self, spec: SessionSpec, notices: Notices | None = None) -> None:
        self.spec = spec
        self.notices = notices or Notices()
        self.run = RunDir(spec.out)
        self.limits = shared_limits(spec.project, spec.shares)
        self.manifest: Manifest | None = None
        self.comparison: Comparison | None = None
        self._budget: Budget | None = None  # set by prepare()
        check_api_keys(spec.project, [a.provider for a in spec.arms])

    # --- before any call -------------------------------------------------------------------

    def prepare(self) -> Manifest | None:
        """The run directory made ready and the budget set; the manifest of the run being
        resumed, or None for a new run."""
        spec = self.spec
        if spec.resume:
            self.manifest = self._resumed()
        elif self.run.holds_run():
            hint = "pass --resume or a new --out" if spec.resumable else "choose a new --out"
            raise ConfigError.one(str(spec.out), None, f"run directory already holds a run; {hint}")
        else:
            spec.out.mkdir(parents=True, exist_ok=True)
        spent = self.run.spent_usd() if self.manifest is not None else 0.0
        self._budget = Budget(max(0.0, self.share_usd - spent))
        if self.manifest is None and spec.ledger is not None:  # checked before any call
            self.comparison = ledger.check(spec.ledger, self._new_manifest(),
                                           spec.force_restart)
        return self.manifest

    @property
    def budget(self) -> Budget:
        if self._budget is None:
            raise RuntimeError("RunSession.prepare() sets the budget")
        return self._budget

    @property
    def share_usd(self) -> float:
        """This process's share of the ceiling (the whole ceiling unless it is a shard)."""
        return self.spec.ceiling_usd / self.spec.shares

    def declare(self) -> Manifest:
        """The manifest of the run: the resumed one, else a new one written now (once)."""
        if self.manifest is None:
            manifest = self._new_manifest()
            if self.comparison is not None:
                manifest = manifest.model_copy(update={"comparison": self.comparison})
            self.run.write_manifest(manifest)
            self.manifest = manifest
            self._ledger_line(manifest, None)
        return self.manifest

    def _new_manifest(self) -> Manifest:
        return self.spec.manifest(budget_snapshot(self.budget, self.spec.configured_by))

    # --- the calls -------------------------------------------------------------------------

    def execute(self, schedule: Schedule) -> Outcome:
        """Open the providers, declare the run, and run the command's schedule on an engine."""
        return in_event_loop(self.execute_async(schedule))

    async def execute_async(self, schedule: Schedule,
                            programs: ProgramPool | None = None) -> Outcome:
        """``execute`` inside a running event loop; ``programs``: a pool of persistent agent
        programs the caller owns and shares between its runs (else the engine has its own)."""
        spec = self.spec
        models: dict[str, set[str]] = {}
        for a in spec.arms:
            models.setdefault(a.provider, set()).add(a.model)
        try:
            async with open_providers(self.limits, models, budget=self.budget,
                                      notices=self.notices, seed=spec.seed,
                                      options=spec.provider_options) as providers:
                manifest = self.declare()
                engine = Engine(spec.out, {a.name: a for a in spec.arms}, providers,
                                self.engine_options(), programs)
                try:
                    stopped = await schedule(engine, manifest)
                finally:
                    await engine.aclose()
                return Outcome(engine.halt, stopped)
        except CircuitBreakerError as exc:  # while opening the providers: before any task
            return Outcome(halt_before_any_task(exc, self.notices))

    def engine_options(self) -> EngineOptions:
        """Concurrency is the tightest of the run's and every arm's provider's (a shard's
        share of each)."""
        cfg = self.limits.config
        return EngineOptions(
            seed=self.spec.seed,
            concurrency=min([cfg.run.concurrency]
                            + [cfg.providers[a.provider].concurrency for a in self.spec.arms]),
            max_tokens=cfg.run.max_tokens, temperature=cfg.run.temperature,
            heartbeat_interval_s=self.spec.heartbeat_interval_s or cfg.run.heartbeat_interval_s,
            pause_file=self.spec.pause_file, notices=self.notices,
        )

    # --- after -----------------------------------------------------------------------------

    def finish(self, outcome: Outcome) -> Results:
        """Why the run stopped, and its results derived from the directory and written."""
        manifest = self.declare()
        results = finish_results(self.run, halt=outcome.halt, stopped=outcome.stopped)
        self._ledger_line(manifest, results)
        return results

    def _ledger_line(self, manifest: Manifest, results: Results | None) -> None:
        if self.spec.ledger is not None:
            ledger.record(self.spec.ledger, manifest, self.spec.out, results)

    # --- resuming --------------------------------------------------------------------------

    def _resumed(self) -> Manifest:
        """The manifest to resume, checked against the files as they are now. A resume with a
        larger ``--max-rounds`` continues the run: the declared scope is extended (the planned
        order is a prefix of the longer plan) and the continuation recorded."""
        out = self.spec.out
        if not self.run.has_manifest():
            raise ResumeError(f"--resume: no run in {out} (no {self.run.manifest_path.name})")
        old = self.run.manifest()
        fresh = self.spec.manifest(old.budget)
        if fresh.scope.max_rounds != old.scope.max_rounds:
            continued = self._continued(old, fresh)
            self.run.write_manifest(continued)
            return continued
        check_resume(old, fresh)
        return old

    def _continued(self, old: Manifest, fresh: Manifest) -> Manifest:
        """The manifest of a continued run: the old one with the longer scope and a record
        of it."""
        out = self.spec.out
        before, after = old.scope.max_rounds, fresh.scope.max_rounds
        if after < before:
            raise ResumeError(f"--max-rounds {after}: the run in {out} already plans {before} "
                              "rounds; a run can be continued, never shortened")
        check_resume(old.model_copy(update={"scope": fresh.scope}), fresh)
        units = old.scope.units
        if fresh.scope.units[: len(units)] != units:
            raise ResumeError("--max-rounds: the longer plan does not extend the run's planned "
                              "order (a different plan version?); start a new run")
        stored = self.run.stored_results_path()
        if stored is not None and stored.name == RESULTS:
            verdict = read_results(stored).verdict
            if verdict in ("pass", "regression"):
                raise ResumeError(f"--max-rounds: the run in {out} already decided "
                                  f"({verdict}); there is nothing to continue")
        continuation = Continuation(ts=now_iso(), max_rounds_from=before, max_rounds_to=after,
                                    command=sys.argv[1:])
        return old.model_copy(update={"scope": fresh.scope,
                                      "continuations": [*old.continuations, continuation]})


def check_resume(old: Manifest, fresh: Manifest) -> None:
    """--resume refused when the configuration, a hashed file, the arms, the scope, the seed,
    the plan salt, the statistics or the decision method (a run decided by an earlier gate's
    bets) changed since the run started."""
    changed = []
    if old.config_sha256 != fresh.config_sha256:
        changed.append("the configuration")
    files_old, files_new = old.files_sha256, fresh.files_sha256
    for path in sorted(set(files_old) | set(files_new)):
        if files_old.get(path) != files_new.get(path):
            changed.append(path)
    for key in ("arms", "scope", "seed", "plan_salt", "statistics", "decision_method"):
        if getattr(old, key) != getattr(fresh, key):
            changed.append(key)
    if changed:
        raise ResumeError("--resume refused: changed since the run started: "
                          + ", ".join(changed[:10]) + (" ..." if len(changed) > 10 else ""))


def budget_snapshot(budget: Budget, configured_by: str | None = None) -> BudgetSnapshot:
    """The budget's state as the record the manifest holds."""
    return BudgetSnapshot.model_validate({**budget.snapshot(), "configured_by": configured_by})


def halt_before_any_task(exc: HaltError, notices: Notices) -> HaltRecord:
    """A halt raised while the run was being set up (e.g. the provider's balance unreadable):
    reported like any other, at task "-", round 0."""
    kind = "paused" if isinstance(exc, PausedError) else "circuit_breaker"
    notices.halt(kind, exc.reason, "-", 0)
    return HaltRecord(kind=kind, reason=exc.reason, task="-", round=0)


def shared_limits(project: Project, shares: int) -> Project:
    """The project as one of ``shares`` shards sees it: 1/N of each provider's rate limit
    (the same requests in a window count N times as long; N times the minimum interval) and
    of its concurrency. The configuration's hash is unchanged: the file is the same."""
    if shares == 1:
        return project
    providers = {}
    for name, cfg in project.config.providers.items():
        rl = cfg.rate_limit
        limit = rl.model_copy(update={
            "min_interval_s": rl.min_interval_s * shares,
            "per_s": None if rl.per_s is None else rl.per_s * shares,
        })
        providers[name] = cfg.model_copy(update={
            "rate_limit": limit, "concurrency": max(1, cfg.concurrency // shares)})
    run = project.config.run.model_copy(
        update={"concurrency": max(1, project.config.run.concurrency // shares)})
    config = project.config.model_copy(update={"providers": providers, "run": run})
    return dataclasses.replace(project, config=config)
