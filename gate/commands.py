"""The core commands: validate, run, smoke (sweep, report and verify live beside them)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

from gate.config.load import Project, load_project
from gate.engine.audit import attempts
from gate.engine.jsonl import read_jsonl
from gate.engine.plan import plan_units
from gate.engine.results import compute_results, file_sha256
from gate.engine.rundir import build_manifest, write_json, write_results
from gate.engine.runner import Arm, Cell, Engine
from gate.engine.session import Notices, ProviderOptions, open_providers, resolve_provider
from gate.errors import ConfigError
from gate.providers.budget import Budget

EXIT_OK, EXIT_FAIL, EXIT_HALTED, EXIT_INCONCLUSIVE, EXIT_INVALID = 0, 1, 2, 3, 4


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="gate.yaml", help="gate configuration (default gate.yaml)")


def register(sub: Any) -> None:
    p = sub.add_parser("validate", help="load and check everything; exit 4 when invalid")
    _common(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="screening run of one arm over the suite")
    _common(p)
    p.add_argument("--model", required=True)
    p.add_argument("--provider", help="provider name (default: the model's registry entry)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=None, help="default: run.seed in gate.yaml")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("smoke", help="preflight drill on the simulated provider")
    _common(p)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=cmd_smoke)


def cmd_validate(args: argparse.Namespace) -> int:
    project = load_project(args.config)
    n_tools = sum(len(v) for v in project.tools.values())
    print(f"ok: {len(project.tasks)} tasks, {n_tools} tools, {len(project.prompts)} prompts, "
          f"{len(project.registry.models)} models, {len(project.hashes)} files hashed")
    return EXIT_OK


def _prepare_out(out: Path) -> None:
    if (out / "trials.jsonl").exists() or (out / "manifest.json").exists():
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
    console: TextIO | None = None,
    arm_name: str = "run",
) -> dict[str, Any]:
    """A screening run of one arm: every task x ``rounds``. Returns results."""
    if rounds < 1:
        raise ConfigError.one(project.config_path, None, "--rounds must be at least 1")
    _prepare_out(out)
    arm = Arm(arm_name, model, resolve_provider(project, model, provider), project)
    cfg = project.config
    units = plan_units("rounds", [lt.task.id for lt in project.tasks], rounds, seed, 1)
    cells = [Cell(u.index, u.task, arm.name) for u in units]
    budget = Budget(cfg.budget.ceiling_usd)
    notices = Notices(console)
    manifest: dict[str, Any] = {}

    async def go() -> Engine:
        async with open_providers(project, {arm.provider: {model}}, budget=budget,
                                  notices=notices, seed=seed, options=options) as providers:
            manifest.update(build_manifest(
                project, kind="run", arms=[arm], max_rounds=rounds, seed=seed,
                budget=budget.snapshot(), command=sys.argv[1:]))
            write_json(out / "manifest.json", manifest)
            engine = Engine(
                out, {arm.name: arm}, providers, seed=seed,
                concurrency=min(cfg.run.concurrency, cfg.providers[arm.provider].concurrency),
                max_tokens=cfg.run.max_tokens, temperature=cfg.run.temperature,
                heartbeat_interval_s=heartbeat_interval_s or cfg.run.heartbeat_interval_s,
                console=console, notices=notices,
            )
            try:
                await engine.run_cells(cells, label=f"{arm_name} {model}")
            finally:
                engine.close()
            return engine

    engine = asyncio.run(go())
    halt = None if engine.halt is None else engine.halt.__dict__
    return finish_results(out, manifest, halt=halt,
                          lost_share=cfg.run.lost_share_inconclusive)


def finish_results(
    out: Path, manifest: dict[str, Any], *, halt: dict[str, Any] | None, lost_share: float,
    **extra: Any,
) -> dict[str, Any]:
    trials = read_jsonl(out / "trials.jsonl")
    audit = attempts(read_jsonl(out / "audit.jsonl"))
    evidence = {
        "audit_sha256": file_sha256(out / "audit.jsonl"),
        "trials_sha256": file_sha256(out / "trials.jsonl"),
        "manifest_sha256": file_sha256(out / "manifest.json"),
        "response_ids": sum(1 for a in audit if a.get("response_id")),
        "attempts": len(audit),
    }
    results = compute_results(manifest, trials, audit, halt=halt,
                              lost_share_inconclusive=lost_share, evidence=evidence, **extra)
    write_results(out, results)
    from gate.report.render import render_markdown

    (out / "report.md").write_text(render_markdown(out), encoding="utf-8")
    return results


def print_arm_summary(results: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for name, a in results["arms"].items():
        rate = "n/a" if a["success_rate"] is None else f"{a['success_rate']:.1%}"
        cps = "n/a" if a["cost_per_success_usd"] is None else f"${a['cost_per_success_usd']:.6f}"
        pe = a["provider_errors"]
        print(f"{name} ({a['model']}): {a['successes']}/{a['trials']} succeeded ({rate}); "
              f"pass^k {a['pass_k']}; provider errors {pe['total']} {pe['by_kind']}; "
              f"trials lost {a['trials_lost_to_provider']}; cost ${a['cost_usd']:.6f}; "
              f"cost/success {cps}", file=out)
    scope = results["scope"]
    print(f"status: {results['status']}; scope: {scope['counts']} of {scope['planned']} cells; "
          f"response ids: {results['evidence'].get('response_ids')}", file=out)
    for reason in results["status_reasons"]:
        print(f"  - {reason}", file=out)


def cmd_run(args: argparse.Namespace) -> int:
    project = load_project(args.config)
    seed = project.config.run.seed if args.seed is None else args.seed
    results = execute_run(project, model=args.model, provider=args.provider,
                          rounds=args.rounds, out=args.out, seed=seed)
    print_arm_summary(results)
    export_traces(args.out)
    return {"complete": EXIT_OK, "inconclusive": EXIT_INCONCLUSIVE}.get(
        results["status"], EXIT_HALTED)


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
    from gate.engine.smoke import run_smoke

    project = load_project(args.config)
    seed = project.config.run.seed if args.seed is None else args.seed
    report = run_smoke(project, args.out, seed=seed)
    return EXIT_OK if report["ok"] else EXIT_FAIL
