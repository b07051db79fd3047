"""The core commands: validate, run, smoke and sweep (report and verify live beside them).

Each command parses its arguments, calls the engine, prints, renders report.md and maps the
typed outcome to an exit code (gate.errors). The engine never imports this module.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate.cliargs import (
    CONFIG,
    non_negative_days,
    non_negative_int,
    out_dir,
    positive_int,
    positive_usd,
)
from gate.errors import EXIT_FAIL, EXIT_HALTED, EXIT_INCONCLUSIVE, EXIT_OK, ConfigError
from gate.project.load import Project, load_project, select_tasks
from gate.records import EarlierVerdict, Results
from gate.report.render import print_decision, write_report
from gate.report.summary import print_arm_summary
from gate.rundir import RunDir

if TYPE_CHECKING:
    from gate.engine.ledger import EarlierRun


def _subset(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", action="append", metavar="ID",
                   help="run only this task (repeatable; shell-style globs such as 'orders-*')")
    p.add_argument("--env", action="append", metavar="NAME",
                   help="run only this environment's tasks (repeatable)")


def _project(args: argparse.Namespace) -> Project:
    """The project of ``--config``, narrowed to ``--task``/``--env`` where the command has them."""
    project = load_project(args.config)
    return select_tasks(project, getattr(args, "task", None), getattr(args, "env", None))


def register(sub: Any) -> None:
    p = sub.add_parser("validate", parents=[CONFIG],
                       help="load and check everything; exit 4 when invalid")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", parents=[CONFIG], help="screening run of one arm over the suite")
    p.add_argument("--model", required=True, help="model id (as in models.yaml)")
    p.add_argument("--provider", help="provider name (default: the model's registry entry)")
    p.add_argument("--rounds", type=positive_int, default=1,
                   help="rounds over every task (default 1)")
    p.add_argument("--out", required=True, type=out_dir, metavar="DIR",
                   help="new run directory to write")
    p.add_argument("--seed", type=non_negative_int, default=None,
                   help="default: run.seed in gate.yaml")
    _subset(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("smoke", parents=[CONFIG],
                       help="preflight drill on the simulated provider")
    p.add_argument("--out", required=True, type=out_dir, metavar="DIR",
                   help="directory to write smoke.json into")
    p.add_argument("--seed", type=non_negative_int, default=None,
                   help="default: run.seed in gate.yaml")
    _subset(p)
    p.set_defaults(func=cmd_smoke)

    p = sub.add_parser("sweep", parents=[CONFIG],
                       help="sequential paired comparison of a candidate and a baseline")
    p.add_argument("--candidate", required=True, help="candidate model id")
    p.add_argument("--baseline", help="baseline model id (default: the registry's adopted model)")
    p.add_argument("--baseline-ref", help="git ref whose prompts/tools the baseline arm uses")
    p.add_argument("--provider", help="provider for models not in the registry")
    p.add_argument("--out", required=True, type=out_dir, metavar="DIR",
                   help="run directory (new, or the one to --resume)")
    p.add_argument("--seed", type=non_negative_int, default=None,
                   help="default: run.seed in gate.yaml")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--pause-file", type=Path, help="while this file exists, start no trial")
    p.add_argument("--budget-usd", type=positive_usd,
                   help="spending ceiling of this run, above 0 (default budget.ceiling_usd)")
    p.add_argument("--max-rounds", type=positive_int,
                   help="round limit, at least 1 (default statistics.max_rounds; with --resume, "
                        "a larger limit continues an inconclusive run, keeping every trial)")
    p.add_argument("--reuse-from", type=Path, metavar="DIR",
                   help="cache of earlier runs whose matching baseline trials are reused")
    p.add_argument("--reuse-max-age-days", type=non_negative_days, default=3.0, metavar="DAYS",
                   help="oldest baseline trial reused (default %(default)s: providers drift)")
    p.add_argument("--smoke", type=Path, metavar="DIR",
                   help="smoke directory that must vouch for this config, files and tasks "
                        "(checked whatever the provider; default runs/smoke before paid calls)")
    p.add_argument("--write-status", action="store_true",
                   help="move the candidate to in-progress, then pending-human-review")
    p.add_argument("--shard", metavar="I/N",
                   help="run only shard I of N of --stage; `gate merge` decides (docs/github.md)")
    p.add_argument("--stage", type=positive_int, help="with --shard: the stage (1-based)")
    p.add_argument("--stages", type=positive_int, default=1,
                   help="with --shard: the declared maximum number of stages (default 1)")
    p.add_argument("--ledger", type=Path, metavar="FILE",
                   help="the comparison ledger: a comparison already run is reported or "
                        "continued, not started afresh; a shard reads it before any call and "
                        "never writes it (docs/statistics.md)")
    p.add_argument("--force-restart", action="store_true",
                   help="with --ledger: run a comparison it already holds again (recorded)")
    p.add_argument("--plan-salt", metavar="HEX",
                   help="salt of the plan (default: drawn at random for each new run; every "
                        "shard of a sweep needs the same one)")
    _subset(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("merge", help="merge the shards of a stage and decide (the decision job)")
    p.add_argument("--out", required=True, type=out_dir, metavar="DIR",
                   help="the sweep's run directory, carried from stage to stage")
    p.add_argument("shards", nargs="+", type=Path, metavar="SHARD_DIR",
                   help="every shard directory of this stage")
    p.add_argument("--budget-usd", type=positive_usd,
                   help="the whole sweep's budget (default budget.ceiling_usd)")
    p.add_argument("--ledger", type=Path, metavar="FILE",
                   help="the comparison ledger (as gate sweep --ledger): a new merged run of a "
                        "comparison already decided reports that verdict, nothing is merged")
    p.add_argument("--force-restart", action="store_true",
                   help="with --ledger: merge a new run of a comparison it holds (recorded)")
    p.set_defaults(func=cmd_merge)


def cmd_validate(args: argparse.Namespace) -> int:
    project = load_project(args.config)
    n_tools = sum(len(v) for v in project.tools.values())
    print(f"ok: {len(project.tasks)} tasks, {n_tools} tools, {len(project.prompts)} prompts, "
          f"{len(project.registry.models)} models, {len(project.hashes)} files hashed")
    if project.needs_label:
        print(f"{len(project.needs_label)} task(s) need a label (never run until a person "
              "removes the needs_label tag; docs/traffic.md):")
        for path, task_id in project.needs_label:
            print(f"  {path}: {task_id}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from gate.engine.run import RunSpec, execute_run

    project = _project(args)
    seed = project.config.run.seed if args.seed is None else args.seed
    results = execute_run(project, RunSpec(model=args.model, provider=args.provider,
                                           rounds=args.rounds, out=args.out, seed=seed))
    write_report(args.out)
    print_arm_summary(results)
    export_traces(args.out)
    return {"complete": EXIT_OK, "inconclusive": EXIT_INCONCLUSIVE}.get(
        results.status, EXIT_HALTED)


def export_traces(run_dir: Path) -> None:
    """Send the run as OpenTelemetry spans when the OTLP variables ask; a warning at worst."""
    from gate.report.otel import export_if_configured

    def warn(message: str) -> None:
        print(f"gate: warning: {message}", file=sys.stderr)

    summary = export_if_configured(run_dir, warn)
    if summary is not None and summary.ok:
        print(f"exported {summary.traces} trial traces to OpenTelemetry "
              f"({summary.chat_spans} chat spans, {summary.tool_spans} tool spans)",
              file=sys.stderr)


def cmd_smoke(args: argparse.Namespace) -> int:
    from gate.engine.smoke_start import smoke_command

    report = smoke_command(args.config, lambda: _project(args), args.out, seed=args.seed)
    for c in report.checks:
        print(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
    print(f"smoke: {'passed' if report.ok else 'FAILED'} in {report.seconds} s; "
          f"wrote {args.out / 'smoke.json'}")
    return EXIT_OK if report.ok else EXIT_FAIL


def cmd_sweep(args: argparse.Namespace) -> int:
    from gate.engine.sweep import SweepOptions, run_sweep

    project = _project(args)
    opts = SweepOptions(
        candidate=args.candidate, baseline=args.baseline, baseline_ref=args.baseline_ref,
        out=args.out, seed=project.config.run.seed if args.seed is None else args.seed,
        resume=args.resume, pause_file=args.pause_file, budget_usd=args.budget_usd,
        max_rounds=args.max_rounds, smoke_dir=args.smoke, provider=args.provider,
        write_status=args.write_status, reuse_from=args.reuse_from,
        reuse_max_age_days=args.reuse_max_age_days, plan_salt=args.plan_salt,
        ledger=args.ledger, force_restart=args.force_restart,
    )
    from gate.engine.ledger import EarlierRun

    if args.shard is not None:
        from gate.engine.shard import parse_shard, run_shard

        try:
            info = run_shard(project, opts, parse_shard(args.shard, args.stage, args.stages),
                             config_path=args.config)
        except EarlierRun as earlier:  # as below: nothing run, the merge reports it too
            return earlier_exit(earlier, args.out)
        return EXIT_HALTED if info.halt else EXIT_OK
    if args.stage is not None:
        raise ConfigError.one("--stage", None, "--stage needs --shard I/N")
    try:
        results = run_sweep(project, opts, config_path=args.config)
    except EarlierRun as earlier:  # the comparison's verdict stands: reported, not re-run
        return earlier_exit(earlier, args.out)
    RunDir(args.out).clear_earlier()
    write_report(args.out)
    print_arm_summary(results)
    print_decision(results)
    export_traces(opts.out)
    return sweep_exit_code(results)


def cmd_merge(args: argparse.Namespace) -> int:
    import os

    from gate.engine import ledger
    from gate.engine.shard import github_output_lines, merge

    comparison = None
    if args.ledger is not None and not RunDir(args.out).has_manifest():  # a new merged run
        try:
            comparison = ledger.check(args.ledger, RunDir(args.shards[0]).manifest(),
                                      args.force_restart)
        except ledger.EarlierRun as earlier:  # the comparison's verdict stands: reported
            return earlier_exit(earlier, args.out)
    merged = merge(args.out, args.shards, budget_usd=args.budget_usd, comparison=comparison)
    RunDir(args.out).clear_earlier()
    if args.ledger is not None:
        ledger.record_merged(args.ledger, args.out, merged.results)
    write_report(args.out)
    print_decision(merged.results)
    if os.environ.get("GITHUB_OUTPUT"):
        with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in github_output_lines(merged)))
    return sweep_exit_code(merged.results)


def earlier_exit(earlier: EarlierRun, out: Path) -> int:
    """A comparison the ledger holds as decided: said, reported in ``out`` (earlier-run.json
    and a report.md naming the earlier run, gate.report.states), and the exit code that run
    had (1 for a regression, or a pass with an SLO breached)."""
    from gate.report.neutralize import neutralize
    from gate.report.states import earlier_run_report

    print(f"gate: {neutralize(str(earlier), context='plain')}", file=sys.stderr)
    run = RunDir(out)
    record = earlier.record()
    run.write_earlier(record)
    path = run.write_report(earlier_run_report(record, out.name or None, _report_of(record)))
    print(f"gate: wrote {path}", file=sys.stderr)
    entry = earlier.entry
    return EXIT_OK if entry.verdict == "pass" and entry.slos_met is True else EXIT_FAIL


def _report_of(record: EarlierVerdict) -> str | None:
    """The earlier run's own report.md, when its directory on this disk holds that very run
    (in CI it usually does not: the run directories' cache is gone when the ledger refuses)."""
    earlier = RunDir(record.out)
    try:
        held = earlier.has_manifest() and earlier.manifest().run_id == record.run_id
    except ConfigError:  # not a readable run directory: no pointer
        return None
    return str(earlier.report_path) if held and earlier.report_path.is_file() else None


def sweep_exit_code(results: Results) -> int:
    if results.status in ("halted", "paused"):
        return EXIT_HALTED
    if results.verdict == "regression":
        return EXIT_FAIL
    if results.verdict == "pass":
        return EXIT_OK if results.slos is not None and results.slos.met else EXIT_FAIL
    return EXIT_INCONCLUSIVE
