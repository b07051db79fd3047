"""``gate run``: a screening run of one arm over the suite (every task x rounds)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from gate.connect import ProviderOptions, resolve_provider
from gate.engine.notices import Notices
from gate.engine.plan import plan_units
from gate.engine.rundir import build_manifest
from gate.engine.runner import Arm, Cell, Engine
from gate.engine.session import RunSession, Schedule, SessionSpec
from gate.errors import ConfigError
from gate.project.load import Project
from gate.records import BudgetSnapshot, Manifest, Results


@dataclass(frozen=True)
class RunSpec:
    """What a screening run of one arm runs: every task x ``rounds`` of ``model``."""

    model: str
    provider: str | None
    rounds: int
    out: Path
    seed: int
    options: ProviderOptions | None = None  # the smoke's simulated 402
    heartbeat_interval_s: float | None = None  # else the configured one
    notices: Notices | None = None
    arm_name: str = "run"


def execute_run(project: Project, spec: RunSpec) -> Results:
    """A screening run of one arm: every task x ``rounds``. Returns the results written."""
    session, schedule = prepare_run(project, spec)
    return session.finish(session.execute(schedule))


def prepare_run(project: Project, spec: RunSpec) -> tuple[RunSession, Schedule]:
    """The session of a screening run, prepared (its directory and budget), and its schedule:
    ``session.finish(session.execute(schedule))`` runs it (or ``execute_async`` in a loop that
    runs several, as ``gate smoke`` does)."""
    model, rounds, seed, arm_name = spec.model, spec.rounds, spec.seed, spec.arm_name
    if rounds < 1:
        raise ConfigError.one(project.config_path, None, "--rounds must be at least 1")
    arm = Arm(arm_name, model, resolve_provider(project, model, spec.provider), project)

    def manifest(budget: BudgetSnapshot) -> Manifest:
        return build_manifest(project, kind="run", arms=[arm], max_rounds=rounds, seed=seed,
                              budget=budget, command=sys.argv[1:])

    session = RunSession(SessionSpec(
        project=project, arms=[arm], out=spec.out, seed=seed,
        ceiling_usd=project.config.budget.ceiling_usd, manifest=manifest,
        provider_options=spec.options, heartbeat_interval_s=spec.heartbeat_interval_s),
        spec.notices)
    session.prepare()
    units = plan_units("rounds", [lt.task.id for lt in project.tasks], rounds, "", 1)
    cells = [Cell(u.index, u.task, arm.name) for u in units]

    async def every_cell(engine: Engine, _manifest: Manifest) -> str | None:
        await engine.run_cells(cells, label=f"{arm_name} {model}")
        return None

    return session, every_cell
