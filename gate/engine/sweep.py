"""``gate sweep``: the sequential, paired regression comparison of two arms.

Round r runs both arms on every task with the same task seed. After each round the decision
is replayed from trials.jsonl (gate.engine.decision): regression, no regression within the
margin, or another round. The checkpoint is trials.jsonl itself: ``--resume`` re-runs only
cells without a finished trial, after checking that no configuration, prompt, tool, task or
fixture hash changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gate.config.schema import SloConfig, StatisticsConfig
from gate.connect import check_api_keys, open_providers, resolve_provider
from gate.engine.decision import replay
from gate.engine.plan import Unit, batches, new_salt, units_of
from gate.engine.reuse import DEFAULT_MAX_AGE_DAYS, Reuse, baseline_key, load_cache
from gate.engine.rundir import build_manifest, finish_results
from gate.engine.runner import Arm, Cell, Engine, halt_before_any_task, now_iso
from gate.engine.session import Notices
from gate.errors import CircuitBreakerError, ConfigError, ResumeError
from gate.project.load import Project, load_project, select_tasks
from gate.providers.base import Provider
from gate.providers.budget import Budget
from gate.records import (
    BudgetSnapshot,
    Continuation,
    HaltRecord,
    Manifest,
    Results,
)
from gate.rundir import RESULTS, RunDir, read_results


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


def _new_manifest(project: Project, arms: list[Arm], opts: SweepOptions, max_rounds: int,
                  budget: BudgetSnapshot, reuse: Reuse | None = None) -> Manifest:
    manifest = build_manifest(project, kind="sweep", arms=arms, max_rounds=max_rounds,
                              seed=opts.seed, budget=budget, command=sys.argv[1:],
                              schedule=project.config.statistics.schedule,
                              plan_salt=opts.plan_salt)
    key = baseline_key(arms[1], project.config_sha256, opts.seed)
    shared = None if reuse is None else reuse.shared(manifest)
    return manifest.model_copy(update={"baseline_key": key, "shared_baseline": shared})


def _reuse(opts: SweepOptions, key: str, notices: Notices) -> Reuse | None:
    if opts.reuse_from is None:
        return None
    if not opts.reuse_max_age_days >= 0:
        raise ConfigError.one("--reuse-max-age-days", None, "must be a number of days >= 0")
    reuse = load_cache(opts.reuse_from, key, max_age_days=opts.reuse_max_age_days)
    notices(f"baseline reuse: {len(reuse.cache)} matching baseline trials in "
            f"{opts.reuse_from} (at most {opts.reuse_max_age_days:g} days old)")
    return reuse


def previous_run(project: Project, arms: list[Arm], opts: SweepOptions,
                  max_rounds: int) -> Manifest | None:
    """The manifest to resume (checked against the files as they are now), or None if fresh.

    A resume with a larger ``--max-rounds`` continues the run: the declared scope is extended
    (the planned order is a prefix of the longer plan) and the continuation recorded.
    """
    run = RunDir(opts.out)
    if opts.resume:
        if not run.has_manifest():
            raise ResumeError(f"--resume: no run in {opts.out} (no {run.manifest_path.name})")
        old = run.manifest()
        fresh = _new_manifest(project, arms, opts, max_rounds, old.budget)
        if fresh.scope.max_rounds != old.scope.max_rounds:
            continued = _continued(old, fresh, opts)
            run.write_manifest(continued)
            return continued
        _check_resume(old, fresh)
        return old
    if run.holds_run():
        raise ConfigError.one(str(opts.out), None,
                              "run directory already holds a run; pass --resume or a new --out")
    opts.out.mkdir(parents=True, exist_ok=True)
    return None


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


def _ledger_line(opts: SweepOptions, manifest: Manifest, verdict: str | None) -> None:
    if opts.ledger is not None:
        from gate.engine import ledger

        ledger.record(opts.ledger, manifest, opts.out, verdict)


def _resume_rounds(opts: SweepOptions, default: int) -> int:
    """``--max-rounds``, else the limit of the run being resumed, else the configured one."""
    if opts.max_rounds is not None:
        return opts.max_rounds
    if opts.resume and RunDir(opts.out).has_manifest():
        return RunDir(opts.out).manifest().scope.max_rounds
    return default


def _continued(old: Manifest, fresh: Manifest, opts: SweepOptions) -> Manifest:
    """The manifest of a continued run: the old one with the longer scope and a record of it."""
    before, after = old.scope.max_rounds, fresh.scope.max_rounds
    if after < before:
        raise ResumeError(f"--max-rounds {after}: the run in {opts.out} already plans {before} "
                          "rounds; a run can be continued, never shortened")
    _check_resume(old.model_copy(update={"scope": fresh.scope}), fresh)
    units = old.scope.units
    if fresh.scope.units[: len(units)] != units:
        raise ResumeError("--max-rounds: the longer plan does not extend the run's planned "
                          "order (a different plan version?); start a new run")
    stored = RunDir(opts.out).stored_results_path()
    if stored is not None and stored.name == RESULTS:
        verdict = read_results(stored).verdict
        if verdict in ("pass", "regression"):
            raise ResumeError(f"--max-rounds: the run in {opts.out} already decided "
                              f"({verdict}); there is nothing to continue")
    continuation = Continuation(ts=now_iso(), max_rounds_from=before, max_rounds_to=after,
                                command=sys.argv[1:])
    return old.model_copy(update={"scope": fresh.scope,
                                  "continuations": [*old.continuations, continuation]})


def _check_resume(old: Manifest, fresh: Manifest) -> None:
    changed = []
    if old.config_sha256 != fresh.config_sha256:
        changed.append("the configuration")
    files_old, files_new = old.files_sha256, fresh.files_sha256
    for path in sorted(set(files_old) | set(files_new)):
        if files_old.get(path) != files_new.get(path):
            changed.append(path)
    for key in ("arms", "scope", "seed", "plan_salt", "statistics"):
        if getattr(old, key) != getattr(fresh, key):
            changed.append(key)
    if changed:
        raise ResumeError("--resume refused: changed since the run started: "
                          + ", ".join(changed[:10]) + (" ..." if len(changed) > 10 else ""))


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
    ceiling = cfg.budget.ceiling_usd if opts.budget_usd is None else opts.budget_usd
    arms = build_arms(project, opts, config_path)
    check_api_keys(project, [a.provider for a in arms])
    check_smoke(project, arms, opts.smoke_dir)
    reuse = _reuse(opts, baseline_key(arms[1], project.config_sha256, opts.seed), notices)
    previous = previous_run(project, arms, opts, max_rounds)
    spent_before = RunDir(opts.out).spent_usd() if previous else 0.0
    budget = Budget(max(0.0, ceiling - spent_before))
    manifests: list[Manifest] = [] if previous is None else [previous]

    def declare() -> Manifest:
        """The manifest of the run: the previous one on --resume, else written now."""
        if not manifests:
            snapshot = BudgetSnapshot.model_validate({
                **budget.snapshot(),
                "configured_by": "--budget-usd" if opts.budget_usd else "gate.yaml"})
            manifest = _new_manifest(project, arms, opts, max_rounds, snapshot, reuse)
            manifests.append(manifest.model_copy(update={"comparison": comparison}))
            RunDir(opts.out).write_manifest(manifests[0])
            _ledger_line(opts, manifests[0], None)
        return manifests[0]

    comparison = None  # --ledger: checked before any call
    if previous is None and opts.ledger is not None:
        from gate.engine import ledger

        probe = _new_manifest(project, arms, opts, max_rounds, BudgetSnapshot.model_validate(
            {**budget.snapshot(), "configured_by": "gate.yaml"}))
        comparison = ledger.check(opts.ledger, probe, opts.force_restart)
    halt, stopped = asyncio.run(_run(project, arms, opts, budget, declare, notices, reuse))
    manifest = declare()
    results = finish_results(RunDir(opts.out), halt=halt, stopped=stopped)
    _ledger_line(opts, manifest, results.verdict)
    if opts.write_status and results.status not in ("halted", "paused"):
        _write_status(project, opts.candidate, "pending-human-review", manifest.run_id, notices)
    return results


async def _run(
    project: Project, arms: list[Arm], opts: SweepOptions, budget: Budget,
    declare: Callable[[], Manifest], notices: Notices, reuse: Reuse | None = None,
) -> tuple[HaltRecord | None, str | None]:
    """Open the providers and run the rounds: (the halt, why it stopped undecided)."""
    cfg = project.config
    models: dict[str, set[str]] = {}
    for a in arms:
        models.setdefault(a.provider, set()).add(a.model)
    try:
        async with open_providers(project, models, budget=budget, notices=notices,
                                  seed=opts.seed) as providers:
            manifest = declare()
            if opts.write_status:
                _write_status(project, opts.candidate, "in-progress", manifest.run_id, notices)
            engine = sweep_engine(project, opts, arms, providers, notices)
            try:
                stopped = await _rounds(engine, opts.out, units_of(manifest.scope),
                                        _min_checks(project), cfg.statistics, notices, budget,
                                        reuse, cfg.slos)
            finally:
                engine.close()
            if reuse is not None:
                notices(reuse.summary())
            return engine.halt, stopped
    except CircuitBreakerError as exc:  # while opening the providers: before any task
        return halt_before_any_task(exc, notices), None


def sweep_engine(
    project: Project, opts: SweepOptions, arms: list[Arm], providers: dict[str, Provider],
    notices: Notices,
) -> Engine:
    """The engine of a sweep's arms (one process or one shard): concurrency is the tightest
    of the run's and every arm's provider's."""
    cfg = project.config
    return Engine(
        opts.out, {a.name: a for a in arms}, providers, seed=opts.seed,
        concurrency=min([cfg.run.concurrency]
                        + [cfg.providers[a.provider].concurrency for a in arms]),
        max_tokens=cfg.run.max_tokens, temperature=cfg.run.temperature,
        heartbeat_interval_s=cfg.run.heartbeat_interval_s,
        pause_file=opts.pause_file, notices=notices,
    )


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
    snap = budget.snapshot()
    if snap["spent_usd"] + projected > snap["ceiling_usd"]:
        return (f"budget: check {number} would cost about ${projected:.4f}, "
                f"${max(0.0, snap['ceiling_usd'] - snap['spent_usd']):.4f} left of "
                f"${snap['ceiling_usd']:.4f}")
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
