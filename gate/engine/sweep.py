"""``gate sweep``: the sequential, paired regression comparison of two arms.

Round r runs both arms on every task with the same task seed. After each round the decision
is replayed from trials.jsonl (gate.engine.decision): regression, no regression within the
margin, or another round. The checkpoint is trials.jsonl itself: ``--resume`` re-runs only
cells without a finished trial, after checking that no configuration, prompt, tool, task or
fixture hash changed.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from gate.config.schema import SloConfig, StatisticsConfig
from gate.connect import resolve_provider
from gate.engine.decision import replay
from gate.engine.notices import Notices
from gate.engine.plan import Unit, batches, new_salt, units_of
from gate.engine.reuse import DEFAULT_MAX_AGE_DAYS, Reuse, baseline_key, load_cache
from gate.engine.rundir import build_manifest
from gate.engine.runner import Arm, Cell, Engine
from gate.engine.session import RunSession, SessionSpec, budget_snapshot
from gate.errors import ConfigError
from gate.project.load import Project, load_project, select_tasks
from gate.providers.budget import Budget
from gate.records import BudgetSnapshot, Manifest, Results
from gate.rundir import RunDir


@dataclass
class SweepOptions:
    candidate: str
    baseline: str | None
    baseline_ref: str | None
    out: Path
    seed: int
    resume: bool = False
    pause_file: Path | None = None
    budget_usd: float | None = None
    max_rounds: int | None = None
    smoke_dir: Path | None = None
    provider: str | None = None
    write_status: bool = False
    reuse_from: Path | None = None
    reuse_max_age_days: float = DEFAULT_MAX_AGE_DAYS
    plan_salt: str | None = None  # the iid plan's salt: drawn at random unless given
    ledger: Path | None = None  # the comparison ledger (gate.engine.ledger)
    force_restart: bool = False  # run a comparison the ledger already holds (recorded)


def adopted_model(project: Project) -> str:
    adopted = [m.id for m in project.registry.models if m.evaluation_status == "adopted"]
    if len(adopted) != 1:
        raise ConfigError.one(
            project.config.suite.registry, None,
            f"cannot choose a default baseline: {len(adopted)} adopted models "
            f"({', '.join(adopted) or 'none'}); pass --baseline")
    return adopted[0]


def build_arms(project: Project, opts: SweepOptions, config_path: str) -> list[Arm]:
    base_project = project
    if opts.baseline_ref:
        from gate.gitref import git_source

        base_project = load_project(config_path, prompt_tool_source=git_source(opts.baseline_ref))
        if project.subset is not None:  # the same tasks on both arms
            base_project = select_tasks(base_project, project.subset.task_patterns,
                                        project.subset.environments)
    baseline = opts.baseline or (opts.candidate if opts.baseline_ref else adopted_model(project))
    return [
        Arm("candidate", opts.candidate,
            resolve_provider(project, opts.candidate, opts.provider, flag="--candidate"),
            project),
        Arm("baseline", baseline,
            resolve_provider(project, baseline, opts.provider, flag="--baseline"),
            base_project),
    ]


def check_smoke(project: Project, arms: list[Arm], smoke_dir: Path | None) -> None:
    """Rule 2: no paid call until the smoke test passed for the same config, files and tasks.

    A ``--smoke DIR`` that is given is checked whatever the provider (a missing, failed, stale
    or partial smoke is refused on simulated arms too); without one, a paid arm reads
    runs/smoke, and a sweep of simulated arms only, which spends nothing, needs none."""
    paid = [a for a in arms if project.config.providers[a.provider].type != "mock"]
    if smoke_dir is None and not paid:
        return
    smoke_run = RunDir(smoke_dir or Path("runs/smoke"))
    path = smoke_run.smoke_path
    if not path.exists():
        raise ConfigError.one(str(path), None,
                              "no smoke result: run `gate smoke --out DIR` first (smoke before "
                              "spend) and pass --smoke DIR")
    smoke = smoke_run.smoke()
    if not smoke.ok:
        raise ConfigError.one(str(path), None, "the smoke test failed; fix it before spending")
    if smoke.config_sha256 != project.config_sha256 or smoke.files_sha256 != project.hashes:
        raise ConfigError.one(str(path), None,
                              "the smoke test ran on different config or files; run it again")
    covered = {t.task for t in smoke.tasks}
    missing = [lt.task.id for lt in project.tasks if lt.task.id not in covered]
    if missing:
        raise ConfigError.one(str(path), None,
                              f"the smoke test did not cover {len(missing)} task(s) this sweep "
                              f"runs ({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''})"
                              "; run it on those tasks")


def sweep_manifest(project: Project, arms: list[Arm], opts: SweepOptions, max_rounds: int,
                   budget: BudgetSnapshot, reuse: Reuse | None = None) -> Manifest:
    """The manifest of a new sweep (one process or one shard); with ``reuse``, who shares the
    baseline cache (``shared_baseline``)."""
    manifest = build_manifest(project, kind="sweep", arms=arms, max_rounds=max_rounds,
                              seed=opts.seed, budget=budget, command=sys.argv[1:],
                              schedule=project.config.statistics.schedule,
                              plan_salt=opts.plan_salt)
    key = baseline_key(arms[1], project.config_sha256, opts.seed)
    shared = None if reuse is None else reuse.shared(manifest)
    return manifest.model_copy(update={"baseline_key": key, "shared_baseline": shared})


def baseline_reuse(opts: SweepOptions, key: str, notices: Notices) -> Reuse | None:
    """``--reuse-from``: the cached baseline trials that match this sweep's baseline."""
    if opts.reuse_from is None:
        return None
    if not opts.reuse_max_age_days >= 0:
        raise ConfigError.one("--reuse-max-age-days", None, "must be a number of days >= 0")
    reuse = load_cache(opts.reuse_from, key, max_age_days=opts.reuse_max_age_days)
    notices(f"baseline reuse: {len(reuse.cache)} matching baseline trials in "
            f"{opts.reuse_from} (at most {opts.reuse_max_age_days:g} days old)")
    return reuse


@dataclass
class SweepStart:
    """A sweep's session, prepared, and its baseline reuse (one process or one shard)."""

    session: RunSession
    reuse: Reuse | None


def start_sweep(project: Project, opts: SweepOptions, *, config_path: str, max_rounds: int,
                notices: Notices, shards: int | None = None) -> SweepStart:
    """Arms resolved, API keys, the smoke test (rule 2), the baseline cache, and the run
    directory prepared or resumed with its budget (one of ``shards`` shards: its share of
    the ceiling; the session keeps no ledger: a shard checks it itself, the merge records)."""
    arms = build_arms(project, opts, config_path)

    def manifest(budget: BudgetSnapshot) -> Manifest:
        return sweep_manifest(project, arms, opts, max_rounds, budget, reuse)

    ceiling = project.config.budget.ceiling_usd if opts.budget_usd is None else opts.budget_usd
    sharded = shards is not None
    session = RunSession(SessionSpec(
        project=project, arms=arms, out=opts.out, seed=opts.seed, ceiling_usd=ceiling,
        manifest=manifest, shares=shards or 1, resumable=True, resume=opts.resume,
        pause_file=opts.pause_file,
        configured_by=("stage budget / shards" if sharded
                       else "--budget-usd" if opts.budget_usd else "gate.yaml"),
        ledger=None if sharded else opts.ledger, force_restart=opts.force_restart,
    ), notices)
    check_smoke(project, arms, opts.smoke_dir)
    reuse = baseline_reuse(opts, baseline_key(arms[1], project.config_sha256, opts.seed),
                           notices)
    session.prepare()
    return SweepStart(session, reuse)


def with_plan_salt(opts: SweepOptions) -> SweepOptions:
    """``opts`` with the plan salt of the run: ``--plan-salt`` if given, else the one recorded
    in the manifest being resumed (None for a run from before plan salts: its plan was drawn
    from the seed), else a fresh random one: every new run meets a new plan."""
    if opts.plan_salt is not None:
        if not _SALT.fullmatch(opts.plan_salt):
            raise ConfigError.one("--plan-salt", None, "expected 1 to 64 hex digits (0-9a-f)")
        return opts
    if opts.resume and RunDir(opts.out).has_manifest():
        return dataclasses.replace(opts, plan_salt=RunDir(opts.out).manifest().plan_salt)
    return dataclasses.replace(opts, plan_salt=new_salt())


_SALT = re.compile(r"[0-9a-f]{1,64}")


def _resume_rounds(opts: SweepOptions, default: int) -> int:
    """``--max-rounds``, else the limit of the run being resumed, else the configured one."""
    if opts.max_rounds is not None:
        return opts.max_rounds
    if opts.resume and RunDir(opts.out).has_manifest():
        return RunDir(opts.out).manifest().scope.max_rounds
    return default


def run_sweep(
    project: Project, opts: SweepOptions, *, config_path: str = "gate.yaml",
    notices: Notices | None = None,
) -> Results:
    """Run (or resume) the sweep in ``opts.out``; returns the results written there."""
    notices = notices or Notices()
    cfg = project.config
    opts = with_plan_salt(opts)
    max_rounds = _resume_rounds(opts, cfg.statistics.max_rounds)
    if max_rounds < 1:
        raise ConfigError.one(project.config_path, None, "--max-rounds must be at least 1")
    start = start_sweep(project, opts, config_path=config_path, max_rounds=max_rounds,
                        notices=notices)
    session, reuse = start.session, start.reuse

    async def until_decided(engine: Engine, manifest: Manifest) -> str | None:
        if opts.write_status:
            _write_status(project, opts.candidate, "in-progress", manifest.run_id, notices)
        stopped = await _rounds(engine, opts.out, units_of(manifest.scope),
                                _min_checks(project), cfg.statistics, notices, session.budget,
                                reuse, cfg.slos)
        if reuse is not None:
            notices(reuse.summary())
        return stopped

    results = session.finish(session.execute(until_decided))
    if opts.write_status and results.status not in ("halted", "paused"):
        _write_status(project, opts.candidate, "pending-human-review", session.declare().run_id,
                      notices)
    return results


def _min_checks(project: Project) -> int:
    """Checks to run after a no-regression decision so that pass^k has k trials per task:
    only with ``statistics.pass_k_top_up`` (rounds schedule, a pass^k SLO). A regression is
    never topped up: no pass^k figure can change its verdict."""
    stats, slos = project.config.statistics, project.config.slos
    if stats.schedule != "rounds" or slos.pass_k is None or not stats.pass_k_top_up:
        return 1
    return slos.pass_k.k


async def _rounds(engine: Engine, out: Path, units: list[Unit], min_checks: int,
                  stats: StatisticsConfig, notices: Notices, budget: Budget,
                  reuse: Reuse | None = None, slos: SloConfig | None = None) -> str | None:
    """Run batches (rounds) until the test decides, and at least ``min_checks`` of them.

    Returns why the sweep stopped before a decision, when the budget cannot cover another
    batch (an inconclusive result, not a halt: nothing was refused mid-batch).
    """
    groups = batches(units)
    for number, group in enumerate(groups, start=1):
        trials = RunDir(out).trials()
        test, _log = replay(stats, trials, units, slos)
        if test.verdict != "continue" and (number > min_checks
                                           or test.verdict != "no_regression"):
            return None
        done = {t.trial_id for t in trials}
        cells = [Cell(u.index, u.task, arm, u.occurrence) for u in group
                 for arm in ("candidate", "baseline") if u.trial_id(arm) not in done]
        if reuse is not None:
            cells = await reuse.take(engine, cells)
        paid = sum(1 for t in trials if t.reused_from is None)
        stop = _budget_stop(out, budget, number, len(cells), paid)
        if stop is not None and test.verdict == "continue":
            notices(stop)
            return stop
        if cells:
            await engine.run_cells(cells, label=f"check {number}/{len(groups)}")
        if engine.halt is not None:
            return None
        trials = RunDir(out).trials()
        test, log = replay(stats, trials, units, slos)
        if log and log[-1].round == number:
            last = log[-1]
            notices(f"check {last.round}: {last.pairs} pairs, mean diff "
                    f"{_fmt(last.mean_diff)}, e_reject {last.e_reject:.3g}, "
                    f"e_accept {last.e_accept:.3g} -> {last.verdict}")
    return None


def _budget_stop(out: Path, budget: Budget, number: int, cells: int,
                 cells_done: int) -> str | None:
    """Stop before a batch the budget cannot cover, projected from the cost per cell so far."""
    if cells_done == 0 or cells == 0:
        return None
    projected = RunDir(out).spent_usd() / cells_done * cells
    snap = budget_snapshot(budget)
    if snap.spent_usd + projected > snap.ceiling_usd:
        return (f"budget: check {number} would cost about ${projected:.4f}, "
                f"${max(0.0, snap.ceiling_usd - snap.spent_usd):.4f} left of "
                f"${snap.ceiling_usd:.4f}")
    return None


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.3f}"


def _write_status(project: Project, model: str, status: str, run_id: str,
                  notices: Notices) -> None:
    from gate.project.registry import write_status

    if not any(m.id == model for m in project.registry.models):
        notices(f"--write-status: {model} is not in the registry; nothing written")
        return
    write_status(project.root / project.config.suite.registry, model, status, run_id)
