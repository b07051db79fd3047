"""Sharded sweeps: ``gate sweep --shard I/N --stage S`` and ``gate merge`` (docs/github.md).

The plan of a sweep (its paired units, in the order the decision consumes them) is drawn from
the seed before any call. Stages cut that plan into ``stages`` contiguous runs of decision
batches; a stage's units are dealt to N shards by position (unit k of the stage goes to shard
``k mod N``). A shard runs its cells and nothing else: it never reads the decision and stops
only on the circuit breaker (or the pause file). It gets 1/N of each provider's declared rate
limit and concurrency, and 1/N of the stage's budget.

``gate merge`` is the only place a decision is made: it folds the shards' trials, audit and
heartbeat into one run directory (the checkpoint, carried from stage to stage), replays the
e-process over the planned units in their fixed order, and either decides or names the next
stage. Because the replay reads only finished trials in the planned order, and a trial's
outcome depends only on its seed, the verdict, the pairs used and the e-values are those of the
same sweep run in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from gate.config.load import Project, load_project
from gate.engine.decision import replay
from gate.engine.jsonl import read_jsonl
from gate.engine.plan import Unit, batches, units_of
from gate.engine.rundir import build_manifest, read_json, write_json
from gate.engine.runner import Cell, Engine
from gate.engine.session import Notices, open_providers
from gate.errors import ConfigError
from gate.providers.budget import Budget

SHARD_FILE = "shard.json"
# manifest keys every shard and the merged run must agree on
SAME = ("kind", "config_sha256", "files_sha256", "arms", "scope", "seed", "statistics", "slos",
        "run")


@dataclasses.dataclass(frozen=True)
class ShardSpec:
    index: int  # 1-based
    count: int
    stage: int  # 1-based
    stages: int  # the declared maximum number of stages

    def describe(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def parse_shard(text: str, stage: int | None, stages: int) -> ShardSpec:
    """``I/N`` with 1 <= I <= N, and 1 <= stage <= stages; a one-line error (exit 4) else."""
    parts = text.split("/")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError.one("--shard", None, f"--shard {text!r}: expected I/N, e.g. 2/4")
    index, count = int(parts[0]), int(parts[1])
    if not 1 <= index <= count:
        raise ConfigError.one("--shard", None, f"--shard {text!r}: need 1 <= I <= N")
    if stages < 1:
        raise ConfigError.one("--stages", None, "--stages must be at least 1")
    if stage is None or not 1 <= stage <= stages:
        raise ConfigError.one("--stage", None,
                              f"--stage must be given with --shard, between 1 and {stages}")
    return ShardSpec(index, count, stage, stages)


# --- the plan ------------------------------------------------------------------------------


def stage_units(units: list[Unit], stage: int, stages: int) -> list[Unit]:
    """The units of stage ``stage``: a contiguous share of the decision batches, in order."""
    groups = batches(units)
    lo = (stage - 1) * len(groups) // stages
    hi = stage * len(groups) // stages
    return [u for g in groups[lo:hi] for u in g]


def shard_units(units: list[Unit], index: int, count: int) -> list[Unit]:
    return [u for k, u in enumerate(units) if k % count == index - 1]


def last_batch_of_stage(units: list[Unit], stage: int, stages: int) -> int:
    mine = stage_units(units, stage, stages)
    return mine[-1].batch if mine else 0


# --- one shard -----------------------------------------------------------------------------


def shard_project(project: Project, count: int) -> Project:
    """The project as one of ``count`` shards sees it: 1/count of each provider's rate limit
    (the same requests in a window count times as long; count times the minimum interval) and
    of its concurrency. The configuration's hash is unchanged: the file is the same."""
    if count == 1:
        return project
    providers = {}
    for name, cfg in project.config.providers.items():
        rl = cfg.rate_limit
        limit = rl.model_copy(update={
            "min_interval_s": rl.min_interval_s * count,
            "per_s": None if rl.per_s is None else rl.per_s * count,
        })
        providers[name] = cfg.model_copy(update={
            "rate_limit": limit, "concurrency": max(1, cfg.concurrency // count)})
    run = project.config.run.model_copy(
        update={"concurrency": max(1, project.config.run.concurrency // count)})
    config = project.config.model_copy(update={"providers": providers, "run": run})
    return dataclasses.replace(project, config=config)


def run_shard(project: Project, opts: Any, spec: ShardSpec, *, config_path: str,
              console: TextIO | None = None) -> dict[str, Any]:
    """Run shard ``spec`` of ``opts`` (a SweepOptions) into ``opts.out``; returns shard.json."""
    from gate.engine.sweep import _previous_run, build_arms, check_smoke

    console = console or sys.stderr
    cfg = project.config
    max_rounds = opts.max_rounds or cfg.statistics.max_rounds
    stage_budget = cfg.budget.ceiling_usd if opts.budget_usd is None else opts.budget_usd
    arms = build_arms(project, opts, config_path)
    check_smoke(project, arms, opts.smoke_dir)
    previous = _previous_run(project, arms, opts, max_rounds)
    spent_before = _spent(opts.out) if previous else 0.0
    budget = Budget(max(0.0, stage_budget / spec.count - spent_before))
    sharded = shard_project(project, spec.count)  # providers' limits; arms keep their files
    by_name = {a.name: a for a in arms}
    models: dict[str, set[str]] = {}
    for a in arms:
        models.setdefault(a.provider, set()).add(a.model)
    notices = Notices(console)

    async def go() -> Engine:
        async with open_providers(sharded, models, budget=budget, notices=notices,
                                  seed=opts.seed) as providers:
            manifest = dict(previous or {})
            if previous is None:
                snapshot = {**budget.snapshot(), "configured_by": "stage budget / shards"}
                manifest.update(build_manifest(
                    project, kind="sweep", arms=arms, max_rounds=max_rounds, seed=opts.seed,
                    budget=snapshot, command=sys.argv[1:],
                    schedule=cfg.statistics.schedule))
                manifest["shard"] = spec.describe()
                write_json(opts.out / "manifest.json", manifest)
            elif previous.get("shard") != spec.describe():
                raise ConfigError.one(str(opts.out), None,
                                      "--resume: this directory holds a different shard")
            units = shard_units(stage_units(units_of(manifest["scope"]), spec.stage,
                                            spec.stages), spec.index, spec.count)
            done = {t["trial_id"] for t in read_jsonl(opts.out / "trials.jsonl")}
            cells = [Cell(u.index, u.task, arm) for u in units
                     for arm in ("candidate", "baseline") if u.trial_id(arm) not in done]
            engine = Engine(
                opts.out, by_name, providers, seed=opts.seed,
                concurrency=min([sharded.config.run.concurrency]
                                + [sharded.config.providers[a.provider].concurrency
                                   for a in arms]),
                max_tokens=cfg.run.max_tokens, temperature=cfg.run.temperature,
                heartbeat_interval_s=cfg.run.heartbeat_interval_s,
                pause_file=opts.pause_file, console=console, notices=notices)
            try:
                await engine.run_cells(
                    cells, label=f"stage {spec.stage} shard {spec.index}/{spec.count}")
            finally:
                engine.close()
            return engine

    engine = asyncio.run(go())
    info: dict[str, Any] = {**spec.describe(), "units": len(shard_units(stage_units(
                units_of(read_json(opts.out / "manifest.json")["scope"]), spec.stage,
                spec.stages), spec.index, spec.count)),
            "trials": len(read_jsonl(opts.out / "trials.jsonl")),
            "spent_usd": round(_spent(opts.out), 6), "budget_usd": stage_budget / spec.count,
            "halt": None if engine.halt is None else engine.halt.__dict__}
    write_json(opts.out / SHARD_FILE, info)
    print(f"[gate] stage {spec.stage} shard {spec.index}/{spec.count}: {info['trials']} "
          f"trials, ${info['spent_usd']:.4f} of ${info['budget_usd']:.4f}"
          + ("" if info["halt"] is None else f"; halted: {info['halt']['reason']}"),
          file=console, flush=True)
    return info


def _spent(out: Path) -> float:
    return sum(float(a.get("cost_computed_usd") or 0.0) for a in read_jsonl(out / "audit.jsonl"))


# --- the decision job ----------------------------------------------------------------------


def register(sub: Any) -> None:
    p = sub.add_parser("merge", help="merge the shards of a stage and decide (the decision job)")
    p.add_argument("--out", required=True, type=Path, help="the run directory (the checkpoint)")
    p.add_argument("shards", nargs="+", type=Path, help="shard directories of this stage")
    p.add_argument("--budget-usd", type=float,
                   help="the whole sweep's budget (default: budget.ceiling_usd of the shards' "
                        "configuration)")
    p.set_defaults(func=cmd_merge)


def cmd_merge(args: argparse.Namespace) -> int:
    from gate.engine.sweep import exit_code
    from gate.report.render import print_decision

    results = merge(args.out, args.shards, budget_usd=args.budget_usd)
    print_decision(results)
    stages = results.get("stages") or {}
    _github_output(stages.get("next_stage"), results)
    return exit_code(results)


def _github_output(next_stage: int | None, results: dict[str, Any]) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"next_stage={'' if next_stage is None else next_stage}\n")
        f.write(f"verdict={results.get('verdict') or ''}\n")
        f.write(f"stage_budget_usd={stage_budget(results)}\n")


def stage_budget(results: dict[str, Any]) -> str:
    """What is left of the sweep's budget for the next stage ('' when none is needed)."""
    stages = results.get("stages") or {}
    if stages.get("next_stage") is None:
        return ""
    left = max(0.0, float(stages.get("ceiling_usd", 0.0)) - float(stages.get("spent_usd", 0.0)))
    return f"{left:.6f}"


def _load_shard(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    manifest_path, info_path = path / "manifest.json", path / SHARD_FILE
    for p in (manifest_path, info_path):
        if not p.exists():
            raise ConfigError.one(str(p), None, "not a finished shard directory (missing)")
    manifest = read_json(manifest_path)
    if not isinstance(manifest.get("shard"), dict):
        raise ConfigError.one(str(manifest_path), None, "not a shard's manifest (no shard)")
    return manifest, read_json(info_path)


def _check_same(ref: dict[str, Any], other: dict[str, Any], where: str) -> None:
    changed = [k for k in SAME if ref.get(k) != other.get(k)]
    if changed:
        raise ConfigError.one(where, None, "does not belong to this sweep (differs in "
                              + ", ".join(changed) + ")")


def _check_shards(loaded: list[tuple[Path, dict[str, Any], dict[str, Any]]]) -> ShardSpec:
    first = loaded[0][1]["shard"]
    for path, manifest, _info in loaded:
        _check_same(loaded[0][1], manifest, str(path))
        s = manifest["shard"]
        if (s["count"], s["stage"], s["stages"]) != (first["count"], first["stage"],
                                                     first["stages"]):
            raise ConfigError.one(str(path), None, "shard of another stage or shard count")
    indices = sorted(m["shard"]["index"] for _p, m, _i in loaded)
    if indices != list(range(1, first["count"] + 1)):
        missing = sorted(set(range(1, first["count"] + 1)) - set(indices))
        raise ConfigError.one(str(loaded[0][0]), None,
                              f"stage {first['stage']}: shards {indices} given; missing "
                              f"{missing or 'none'} (or given twice)")
    return ShardSpec(1, first["count"], first["stage"], first["stages"])


def merge(out: Path, shard_dirs: list[Path], *, budget_usd: float | None = None,
          console: TextIO | None = None) -> dict[str, Any]:
    console = console or sys.stderr
    loaded = [(p, *_load_shard(p)) for p in shard_dirs]
    spec = _check_shards(loaded)
    manifest = _merged_manifest(out, loaded, spec, budget_usd)
    units = units_of(manifest["scope"])
    order = {u.trial_id(arm): (k, j) for k, u in enumerate(units)
             for j, arm in enumerate(manifest["scope"]["arms"])}
    trials = _union([read_jsonl(out / "trials.jsonl")]
                    + [read_jsonl(p / "trials.jsonl") for p, _m, _i in loaded],
                    key=lambda t: str(t["trial_id"]))
    trials.sort(key=lambda t: order.get(t["trial_id"], (len(units), 0)))
    audit = _union([read_jsonl(out / "audit.jsonl")]
                   + [read_jsonl(p / "audit.jsonl") for p, _m, _i in loaded],
                   key=lambda a: json.dumps(a, sort_keys=True))
    beats = [b for src in [out] + [p for p, _m, _i in loaded]
             for b in read_jsonl(src / "heartbeat.jsonl")]
    for name, rows in (("trials.jsonl", trials), ("audit.jsonl", audit),
                       ("heartbeat.jsonl", beats)):
        _write_jsonl(out / name, rows)
    halt = next((i["halt"] for _p, _m, i in loaded if i.get("halt")), None)
    return _decide(out, manifest, trials, units, spec, halt, loaded, console)


def _merged_manifest(out: Path, loaded: list[tuple[Path, dict[str, Any], dict[str, Any]]],
                     spec: ShardSpec, budget_usd: float | None) -> dict[str, Any]:
    ref = loaded[0][1]
    path = out / "manifest.json"
    if path.exists():
        manifest: dict[str, Any] = read_json(path)
        _check_same(manifest, ref, str(loaded[0][0]))
        done = [s["stage"] for s in manifest.get("stages", {}).get("run", [])]
        if spec.stage in done:
            raise ConfigError.one(str(out), None, f"stage {spec.stage} is already merged here")
        if manifest.get("stages", {}).get("max") != spec.stages:
            raise ConfigError.one(str(out), None, "the shards declare another maximum number "
                                  "of stages than this run")
        return manifest
    if spec.stage != 1:
        raise ConfigError.one(str(out), None, f"stage {spec.stage}: no run directory from the "
                              "previous stages here (restore it first)")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {k: v for k, v in ref.items() if k != "shard"}
    manifest["command"] = sys.argv[1:]
    ceiling = budget_usd if budget_usd is not None else _config_ceiling(ref)
    manifest["budget"] = {**Budget(ceiling).snapshot(), "configured_by":
                          "--budget-usd" if budget_usd is not None else "gate.yaml"}
    manifest["stages"] = {"max": spec.stages, "run": [], "next_stage": None}
    return manifest


def _config_ceiling(ref: dict[str, Any]) -> float:
    config = load_project(ref["config_path"]).config if Path(ref["config_path"]).exists() else None
    return config.budget.ceiling_usd if config is not None else 0.0


def _decide(out: Path, manifest: dict[str, Any], trials: list[dict[str, Any]],
            units: list[Unit], spec: ShardSpec, halt: dict[str, Any] | None,
            loaded: list[tuple[Path, dict[str, Any], dict[str, Any]]],
            console: TextIO) -> dict[str, Any]:
    from gate.config.schema import StatisticsConfig
    from gate.engine.sweep import finish_sweep

    test, _log = replay(StatisticsConfig.model_validate(manifest["statistics"]), trials, units)
    spent = sum(float(a.get("cost_computed_usd") or 0.0) for a in read_jsonl(out / "audit.jsonl"))
    more = last_batch_of_stage(units, spec.stage, spec.stages) < (units[-1].batch if units
                                                                  else 0)
    undecided = test.verdict == "continue" and halt is None
    next_stage = spec.stage + 1 if undecided and more and spec.stage < spec.stages else None
    stopped = None
    if undecided:
        stopped = (f"stage {spec.stage} of {spec.stages} undecided: stage {next_stage} needed"
                   if next_stage else f"undecided after the last stage ({spec.stages})")
    record = {"stage": spec.stage, "shards": spec.count,
              "trials": sum(len(read_jsonl(p / "trials.jsonl")) for p, _m, _i in loaded),
              "spent_usd": round(sum(float(i.get("spent_usd") or 0.0)
                                     for _p, _m, i in loaded), 6)}
    stages = manifest["stages"]
    stages["run"] = [*stages["run"], record]
    stages["next_stage"] = next_stage
    stages["spent_usd"] = round(spent, 6)
    stages["ceiling_usd"] = manifest["budget"]["ceiling_usd"]
    write_json(out / "manifest.json", manifest)
    print(f"[gate] merged stage {spec.stage} of {spec.stages} ({spec.count} shards): "
          f"{len(trials)} trials, ${spent:.4f} of ${manifest['budget']['ceiling_usd']:.4f}"
          + (f"; next stage {next_stage}" if next_stage else ""), file=console, flush=True)
    return finish_sweep(out, manifest, halt=halt, stopped=stopped,
                        lost_share=manifest["run"]["lost_share_inconclusive"])


def _union(sources: list[list[dict[str, Any]]], key: Any) -> list[dict[str, Any]]:
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for source in sources:
        for row in source:
            k = key(row)
            if k not in seen:
                seen.add(k)
                rows.append(row)
    return rows


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    os.replace(tmp, path)
