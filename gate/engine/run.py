"""``gate run``: a screening run of one arm over the suite (every task x rounds)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gate.connect import ProviderOptions, check_api_keys, open_providers, resolve_provider
from gate.engine.plan import plan_units
from gate.engine.rundir import build_manifest, finish_results
from gate.engine.runner import Arm, Cell, Engine, halt_before_any_task
from gate.engine.session import Notices
from gate.errors import CircuitBreakerError, ConfigError
from gate.project.load import Project
from gate.providers.budget import Budget
from gate.records import BudgetSnapshot, HaltRecord, Manifest, Results
from gate.rundir import RunDir


def prepare_out(out: Path) -> None:
    """A new run directory: refuse one that already holds a run."""
    if RunDir(out).holds_run():
        raise ConfigError.one(str(out), None,
                              "run directory already holds a run; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)


def execute_run(
    project: Project,
    *,
    model: str,
    provider: str | None,
    rounds: int,
    out: Path,
    seed: int,
    options: ProviderOptions | None = None,
    heartbeat_interval_s: float | None = None,
    notices: Notices | None = None,
    arm_name: str = "run",
) -> Results:
    """A screening run of one arm: every task x ``rounds``. Returns the results written."""
    if rounds < 1:
        raise ConfigError.one(project.config_path, None, "--rounds must be at least 1")
    arm = Arm(arm_name, model, resolve_provider(project, model, provider), project)
    check_api_keys(project, [arm.provider])
    prepare_out(out)
    cfg = project.config
    units = plan_units("rounds", [lt.task.id for lt in project.tasks], rounds, "", 1)
    cells = [Cell(u.index, u.task, arm.name) for u in units]
    budget = Budget(cfg.budget.ceiling_usd)
    notices = notices or Notices()
    manifests: list[Manifest] = []

    def declare() -> Manifest:
        if not manifests:
            manifests.append(build_manifest(
                project, kind="run", arms=[arm], max_rounds=rounds, seed=seed,
                budget=BudgetSnapshot.model_validate(budget.snapshot()), command=sys.argv[1:]))
            RunDir(out).write_manifest(manifests[0])
        return manifests[0]

    async def go() -> HaltRecord | None:
        try:
            async with open_providers(project, {arm.provider: {model}}, budget=budget,
                                      notices=notices, seed=seed,
                                      options=options) as providers:
                declare()
                engine = Engine(
                    out, {arm.name: arm}, providers, seed=seed,
                    concurrency=min(cfg.run.concurrency,
                                    cfg.providers[arm.provider].concurrency),
                    max_tokens=cfg.run.max_tokens, temperature=cfg.run.temperature,
                    heartbeat_interval_s=heartbeat_interval_s or cfg.run.heartbeat_interval_s,
                    notices=notices,
                )
                try:
                    await engine.run_cells(cells, label=f"{arm_name} {model}")
                finally:
                    engine.close()
                return engine.halt
        except CircuitBreakerError as exc:  # while opening the provider: before any task
            return halt_before_any_task(exc, notices)

    halt = asyncio.run(go())
    declare()
    return finish_results(RunDir(out), halt=halt)
