"""``gate sweep``: the sequential, paired regression comparison of two arms.

Round r runs both arms on every task with the same task seed. After each round the decision
is replayed from trials.jsonl (gate.engine.decision): regression, no regression within the
margin, or another round. The checkpoint is trials.jsonl itself: ``--resume`` re-runs only
cells without a finished trial, after checking that no configuration, prompt, tool, task or
fixture hash changed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from gate.config.load import Project, load_project
from gate.config.schema import SloConfig
from gate.engine.decision import replay
from gate.engine.jsonl import read_jsonl
from gate.engine.plan import Unit, batches, units_of
from gate.engine.rundir import build_manifest, read_json, write_json
from gate.engine.runner import Arm, Cell, Engine
from gate.engine.session import Notices, open_providers, resolve_provider
from gate.errors import ConfigError, ResumeError
from gate.providers.budget import Budget

EXIT_OK, EXIT_FAIL, EXIT_HALTED, EXIT_INCONCLUSIVE = 0, 1, 2, 3


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


def register(sub: Any) -> None:
    p = sub.add_parser("sweep", help="sequential paired comparison of a candidate and a baseline")
    p.add_argument("--config", default="gate.yaml")
    p.add_argument("--candidate", required=True, help="candidate model id")
    p.add_argument("--baseline", help="baseline model id (default: the registry's adopted model)")
    p.add_argument("--baseline-ref", help="git ref whose prompts/tools the baseline arm uses")
    p.add_argument("--provider", help="provider for models not in the registry")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--pause-file", type=Path, help="while this file exists, start no trial")
    p.add_argument("--budget-usd", type=float, help="spending ceiling of this run")
    p.add_argument("--max-rounds", type=int, help="round limit (default statistics.max_rounds)")
    p.add_argument("--smoke", type=Path, default=Path("runs/smoke"),
                   help="smoke directory that must vouch for this config before paid calls")
    p.add_argument("--write-status", action="store_true",
                   help="move the candidate to in-progress, then pending-human-review")
    p.add_argument("--shard", metavar="I/N",
                   help="run only shard I of N of --stage (gate merge decides; docs/github.md)")
    p.add_argument("--stage", type=int, help="with --shard: the stage (1-based)")
    p.add_argument("--stages", type=int, default=1,
                   help="with --shard: the declared maximum number of stages (default 1)")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    project = load_project(args.config)
    opts = SweepOptions(
        candidate=args.candidate, baseline=args.baseline, baseline_ref=args.baseline_ref,
        out=args.out, seed=project.config.run.seed if args.seed is None else args.seed,
        resume=args.resume, pause_file=args.pause_file, budget_usd=args.budget_usd,
        max_rounds=args.max_rounds, smoke_dir=args.smoke, provider=args.provider,
        write_status=args.write_status,
    )
    if args.shard is not None:
        from gate.engine.shard import parse_shard, run_shard

        info = run_shard(project, opts, parse_shard(args.shard, args.stage, args.stages),
                         config_path=args.config)
        return EXIT_HALTED if info["halt"] else EXIT_OK
    if args.stage is not None:
        raise ConfigError.one("--stage", None, "--stage needs --shard I/N")
    results = run_sweep(project, opts, config_path=args.config)
    from gate.commands import export_traces, print_arm_summary
    from gate.report.render import print_decision

    print_arm_summary(results)
    print_decision(results)
    export_traces(opts.out)
    return exit_code(results)


def exit_code(results: dict[str, Any]) -> int:
    if results["status"] in ("halted", "paused"):
        return EXIT_HALTED
    if results["verdict"] == "regression":
        return EXIT_FAIL
    if results["verdict"] == "pass":
        return EXIT_OK if results["slos"]["met"] else EXIT_FAIL
    return EXIT_INCONCLUSIVE


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
    baseline = opts.baseline or (opts.candidate if opts.baseline_ref else adopted_model(project))
    return [
        Arm("candidate", opts.candidate,
            resolve_provider(project, opts.candidate, opts.provider), project),
        Arm("baseline", baseline, resolve_provider(project, baseline, opts.provider),
            base_project),
    ]


def check_smoke(project: Project, arms: list[Arm], smoke_dir: Path | None) -> None:
    """Rule 2: no paid call until the smoke test passed for the same config and files."""
    paid = [a for a in arms if project.config.providers[a.provider].type != "mock"]
    if not paid:
        return
    path = (smoke_dir or Path("runs/smoke")) / "smoke.json"
    if not path.exists():
        raise ConfigError.one(str(path), None,
                              "no smoke result: run `gate smoke --out DIR` first (smoke before "
                              "spend) and pass --smoke DIR")
    smoke = read_json(path)
    if not smoke.get("ok"):
        raise ConfigError.one(str(path), None, "the smoke test failed; fix it before spending")
    if smoke.get("config_sha256") != project.config_sha256 or \
            smoke.get("files_sha256") != project.hashes:
        raise ConfigError.one(str(path), None,
                              "the smoke test ran on different config or files; run it again")


def _new_manifest(project: Project, arms: list[Arm], opts: SweepOptions, max_rounds: int,
                  budget: dict[str, Any]) -> dict[str, Any]:
    return build_manifest(project, kind="sweep", arms=arms, max_rounds=max_rounds,
                          seed=opts.seed, budget=budget, command=sys.argv[1:],
                          schedule=project.config.statistics.schedule)


def _previous_run(project: Project, arms: list[Arm], opts: SweepOptions,
                  max_rounds: int) -> dict[str, Any] | None:
    """The manifest to resume (checked against the files as they are now), or None if fresh."""
    manifest_path = opts.out / "manifest.json"
    if opts.resume:
        if not manifest_path.exists():
            raise ResumeError(f"--resume: no run in {opts.out} (no manifest.json)")
        old: dict[str, Any] = read_json(manifest_path)
        _check_resume(old, _new_manifest(project, arms, opts, max_rounds, {}))
        return old
    if manifest_path.exists() or (opts.out / "trials.jsonl").exists():
        raise ConfigError.one(str(opts.out), None,
                              "run directory already holds a run; pass --resume or a new --out")
    opts.out.mkdir(parents=True, exist_ok=True)
    return None


def _check_resume(old: dict[str, Any], fresh: dict[str, Any]) -> None:
    changed = []
    if old["config_sha256"] != fresh["config_sha256"]:
        changed.append("the configuration")
    files_old, files_new = old["files_sha256"], fresh["files_sha256"]
    for path in sorted(set(files_old) | set(files_new)):
        if files_old.get(path) != files_new.get(path):
            changed.append(path)
    for key in ("arms", "scope", "seed", "statistics"):
        if old[key] != fresh[key]:
            changed.append(key)
    if changed:
        raise ResumeError("--resume refused: changed since the run started: "
                          + ", ".join(changed[:10]) + (" ..." if len(changed) > 10 else ""))


def run_sweep(
    project: Project, opts: SweepOptions, *, config_path: str = "gate.yaml",
    console: TextIO | None = None,
) -> dict[str, Any]:
    console = console or sys.stderr
    cfg = project.config
    max_rounds = opts.max_rounds or cfg.statistics.max_rounds
    if max_rounds < 1:
        raise ConfigError.one(project.config_path, None, "--max-rounds must be at least 1")
    ceiling = cfg.budget.ceiling_usd if opts.budget_usd is None else opts.budget_usd
    arms = build_arms(project, opts, config_path)
    check_smoke(project, arms, opts.smoke_dir)
    previous = _previous_run(project, arms, opts, max_rounds)
    spent_before = _spent(opts.out) if previous else 0.0
    budget = Budget(max(0.0, ceiling - spent_before))
    notices = Notices(console)
    by_name = {a.name: a for a in arms}
    models: dict[str, set[str]] = {}
    for a in arms:
        models.setdefault(a.provider, set()).add(a.model)
    manifest: dict[str, Any] = dict(previous or {})
    state: dict[str, Any] = {"stopped": None}

    async def go() -> Engine:
        async with open_providers(project, models, budget=budget, notices=notices,
                                  seed=opts.seed) as providers:
            if previous is None:
                snapshot = {**budget.snapshot(),
                            "configured_by": "--budget-usd" if opts.budget_usd else "gate.yaml"}
                manifest.update(_new_manifest(project, arms, opts, max_rounds, snapshot))
                write_json(opts.out / "manifest.json", manifest)
            if opts.write_status:
                _write_status(project, opts.candidate, "in-progress", manifest["run_id"])
            engine = Engine(
                opts.out, by_name, providers, seed=opts.seed,
                concurrency=min([cfg.run.concurrency]
                                + [cfg.providers[a.provider].concurrency for a in arms]),
                max_tokens=cfg.run.max_tokens, temperature=cfg.run.temperature,
                heartbeat_interval_s=cfg.run.heartbeat_interval_s,
                pause_file=opts.pause_file, console=console, notices=notices,
            )
            try:
                state["stopped"] = await _rounds(
                    engine, opts.out, units_of(manifest["scope"]), _min_checks(project),
                    cfg.statistics, console, budget)
            finally:
                engine.close()
            return engine

    engine = asyncio.run(go())
    halt = None if engine.halt is None else engine.halt.__dict__
    results = finish_sweep(opts.out, manifest, halt=halt, stopped=state["stopped"],
                           lost_share=cfg.run.lost_share_inconclusive)
    if opts.write_status and results["status"] not in ("halted", "paused"):
        _write_status(project, opts.candidate, "pending-human-review", manifest["run_id"])
    return results


def _spent(out: Path) -> float:
    """What the run in ``out`` has spent so far, from its audit log."""
    return sum(float(a.get("cost_computed_usd") or 0.0) for a in read_jsonl(out / "audit.jsonl"))


def _min_checks(project: Project) -> int:
    """Checks to run even after a decision, so pass^k has k trials per task (rounds only)."""
    stats, slos = project.config.statistics, project.config.slos
    if stats.schedule != "rounds" or slos.pass_k is None:
        return 1
    return slos.pass_k.k


async def _rounds(engine: Engine, out: Path, units: list[Unit], min_checks: int,
                  stats: Any, console: TextIO, budget: Budget) -> str | None:
    """Run batches (rounds) until the test decides, and at least ``min_checks`` of them.

    Returns why the sweep stopped before a decision, when the budget cannot cover another
    batch (an inconclusive result, not a halt: nothing was refused mid-batch).
    """
    groups = batches(units)
    for number, group in enumerate(groups, start=1):
        trials = read_jsonl(out / "trials.jsonl")
        test, _log = replay(stats, trials, units)
        if test.verdict != "continue" and number > min_checks:
            return None
        done = {t["trial_id"] for t in trials}
        cells = [Cell(u.index, u.task, arm) for u in group for arm in ("candidate", "baseline")
                 if u.trial_id(arm) not in done]
        stop = _budget_stop(out, budget, number, len(cells), len(trials))
        if stop is not None and test.verdict == "continue":
            print(f"[gate] {stop}", file=console, flush=True)
            return stop
        if cells:
            await engine.run_cells(cells, label=f"check {number}/{len(groups)}")
        if engine.halt is not None:
            return None
        trials = read_jsonl(out / "trials.jsonl")
        test, log = replay(stats, trials, units)
        if log and log[-1]["round"] == number:
            last = log[-1]
            print(f"[gate] check {last['round']}: {last['pairs']} pairs, mean diff "
                  f"{_fmt(last['mean_diff'])}, e_reject {last['e_reject']:.3g}, "
                  f"e_accept {last['e_accept']:.3g} -> {last['verdict']}",
                  file=console, flush=True)
    return None


def _budget_stop(out: Path, budget: Budget, number: int, cells: int,
                 cells_done: int) -> str | None:
    """Stop before a batch the budget cannot cover, projected from the cost per cell so far."""
    if cells_done == 0 or cells == 0:
        return None
    projected = _spent(out) / cells_done * cells
    snap = budget.snapshot()
    if snap["spent_usd"] + projected > snap["ceiling_usd"]:
        return (f"budget: check {number} would cost about ${projected:.4f}, "
                f"${max(0.0, snap['ceiling_usd'] - snap['spent_usd']):.4f} left of "
                f"${snap['ceiling_usd']:.4f}")
    return None


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.3f}"


def _write_status(project: Project, model: str, status: str, run_id: str) -> None:
    from gate.config.registry import write_status

    if not any(m.id == model for m in project.registry.models):
        print(f"[gate] --write-status: {model} is not in the registry; nothing written",
              file=sys.stderr)
        return
    write_status(project.root / project.config.suite.registry, model, status, run_id)


def finish_sweep(
    out: Path, manifest: dict[str, Any], *, halt: dict[str, Any] | None, stopped: str | None,
    lost_share: float,
) -> dict[str, Any]:
    from gate.commands import finish_results

    trials = read_jsonl(out / "trials.jsonl")
    decision, verdict = sweep_decision(manifest, trials, stopped)
    return finish_results(out, manifest, halt=halt, lost_share=lost_share,
                          decision=decision, verdict=verdict,
                          slo_config=SloConfig.model_validate(manifest["slos"]))


def sweep_decision(
    manifest: dict[str, Any], trials: list[dict[str, Any]], stopped: str | None
) -> tuple[dict[str, Any], str | None]:
    """The decision replayed from the trials; ``stopped`` is why a sweep ended undecided."""
    from gate.config.schema import StatisticsConfig
    from gate.statistics import fixed_sample_size

    cfg = StatisticsConfig.model_validate(manifest["statistics"])
    tasks = manifest["scope"]["tasks"]
    test, log = replay(cfg, trials, units_of(manifest["scope"]))
    d = test.decision
    verdict = {"regression": "regression", "no_regression": "pass",
               "inconclusive": "inconclusive"}.get(d.verdict)
    if verdict is None and stopped is not None:
        verdict = "inconclusive"
    sigma2, sigma2_source = _variance_of_d(test.sum_d, test.sum_d2, test.pairs)
    n_fixed = math.ceil(fixed_sample_size(cfg.delta, sigma2, cfg.alpha, cfg.beta))
    decision = {
        "verdict": d.verdict,
        "decided_round": d.rounds if d.decided and d.verdict != "inconclusive" else None,
        "rounds": d.rounds,
        "pairs": d.pairs,
        "e_reject": d.e_reject,
        "e_accept": d.e_accept,
        "threshold_reject": d.thresholds.reject,
        "threshold_accept": d.thresholds.accept,
        "score": cfg.score,
        "fixed_sample_pairs": n_fixed,
        "fixed_sample_sigma2": round(sigma2, 6),
        "fixed_sample_sigma2_source": sigma2_source,
        "fixed_sample_rounds": round(n_fixed / max(len(tasks), 1), 2),
        "rounds_log": json.loads(json.dumps(log)),
        "stopped": stopped,
    }
    return decision, verdict


PLANNING_SIGMA2 = 0.3  # docs/statistics.md: discordance rate ~0.3 for delta 0.1


def _variance_of_d(sum_d: float, sum_d2: float, n: int) -> tuple[float, str]:
    """Variance of the paired differences as observed; the planning value when unobserved."""
    if n >= 2:
        mean = sum_d / n
        var = max(sum_d2 / n - mean * mean, 0.0) * n / (n - 1)
        if var > 0:
            return var, "observed"
    return PLANNING_SIGMA2, "planning value"
