"""Sharded sweeps: ``gate sweep --shard I/N --stage S`` and ``gate merge`` (docs/github.md).

The plan of a sweep (its paired units, in the order the decision consumes them) is drawn from
the seed before any call. Stages cut that plan into ``stages`` contiguous runs of decision
batches, each about twice the one before; a stage's units are dealt to N shards by position
(unit k of the stage goes to shard ``k mod N``). A shard runs its cells and nothing else: it
never reads the decision and stops only on the circuit breaker (or the pause file). It gets
1/N of each provider's declared rate limit and concurrency, and 1/N of the stage's budget.
With ``--ledger`` a shard checks the comparison ledger before any call, as a single-process
sweep does, and writes nothing to it (gate.engine.ledger.check_shard): a refused shard leaves
its manifest and an unfinished shard.json, nothing run, so that ``gate merge --ledger`` in
the decision job reports the same refusal.

``gate merge`` is the only place a decision is made: it folds the shards' trials, audit,
transcripts and heartbeat into one run directory (the checkpoint, carried from stage to stage),
replays the e-process over the planned units in their fixed order, and either decides or
names the next stage. Because the replay reads only finished trials in the planned order, and a
trial's outcome depends only on its seed, the verdict, the pairs used and the e-values are those
of the same sweep run in one process.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gate.engine import ledger
from gate.engine.decision import replay
from gate.engine.notices import Notices
from gate.engine.plan import Unit, batches, units_of
from gate.engine.rundir import finish_results
from gate.engine.runner import Cell, Engine
from gate.engine.session import budget_snapshot
from gate.engine.sweep import SweepOptions, start_sweep, with_plan_salt
from gate.engine.transcripts import read_transcripts, write_transcripts
from gate.errors import ConfigError
from gate.project.load import Project, load_project
from gate.providers.budget import Budget
from gate.records import (
    AuditLine,
    Comparison,
    HaltRecord,
    Heartbeat,
    Manifest,
    Results,
    ShardInfo,
    ShardSpecRecord,
    SharedBaseline,
    StageRun,
    Stages,
    Transcript,
    Trial,
)
from gate.rundir import AUDIT, HEARTBEAT, SHARD, STAGES, TRIALS, RunDir
from gate.rundir.jsonl import replace_jsonl

L = TypeVar("L", Trial, AuditLine, Heartbeat)  # a line of a run's JSON-lines files

# manifest keys every shard and the merged run must agree on
SAME = ("kind", "config_sha256", "files_sha256", "arms", "scope", "seed", "plan_salt",
        "statistics", "slos", "run")


@dataclasses.dataclass(frozen=True)
class ShardSpec:
    index: int  # 1-based
    count: int
    stage: int  # 1-based
    stages: int  # the declared maximum number of stages

    def describe(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def record(self) -> ShardSpecRecord:
        return ShardSpecRecord.model_validate(self.describe())


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


def stage_bound(n_batches: int, stage: int, stages: int) -> int:
    """Batches in stages 1..``stage``: each stage about twice the one before (a sweep that
    decides early pays for a small first stage), at least one batch each while they last."""
    if stage >= stages:
        return n_batches
    share = math.ceil(n_batches * (2.0**stage - 1) / (2.0**stages - 1))
    return min(n_batches, max(stage, share))


def stage_units(units: list[Unit], stage: int, stages: int) -> list[Unit]:
    """The units of stage ``stage``: a contiguous run of the decision batches, in order."""
    groups = batches(units)
    lo = 0 if stage == 1 else stage_bound(len(groups), stage - 1, stages)
    hi = stage_bound(len(groups), stage, stages)
    return [u for g in groups[lo:hi] for u in g]


def shard_units(units: list[Unit], index: int, count: int) -> list[Unit]:
    return [u for k, u in enumerate(units) if k % count == index - 1]


def last_batch_of_stage(units: list[Unit], stage: int, stages: int) -> int:
    mine = stage_units(units, stage, stages)
    return mine[-1].batch if mine else 0


# --- one shard -----------------------------------------------------------------------------


def run_shard(project: Project, opts: SweepOptions, spec: ShardSpec, *,
              config_path: str, notices: Notices | None = None) -> ShardInfo:
    """Run shard ``spec`` of ``opts`` (a SweepOptions) into ``opts.out``; returns shard.json."""
    notices = notices or Notices()
    if opts.plan_salt is None and not (opts.resume and RunDir(opts.out).has_manifest()):
        raise ConfigError.one("--plan-salt", None, "--shard needs --plan-salt: every shard of a "
                              "sweep must draw the same plan (the workflow's plan job draws it)")
    opts = with_plan_salt(opts)
    start = start_sweep(project, opts, config_path=config_path,
                        max_rounds=opts.max_rounds or project.config.statistics.max_rounds,
                        notices=notices, shards=spec.count)
    session, reuse, run = start.session, start.reuse, RunDir(opts.out)
    held = run.shard()
    if session.manifest is not None and (held is None or held.spec != spec.record()):
        raise ConfigError.one(str(opts.out), None, "--resume: this directory holds another shard")
    manifest = session.declare()  # a shard directory is one from the start, before any call
    run.write_shard(ShardInfo(spec=spec.record()))
    if opts.ledger is not None:  # read-only, before any call: the merge records the run
        ledger.check_shard(opts.ledger, manifest, opts.force_restart)
    units = shard_units(stage_units(units_of(manifest.scope), spec.stage, spec.stages),
                        spec.index, spec.count)
    done = {t.trial_id for t in run.trials()}
    cells = [Cell(u.index, u.task, arm, u.occurrence) for u in units
             for arm in ("candidate", "baseline") if u.trial_id(arm) not in done]

    async def its_cells(engine: Engine, _manifest: Manifest) -> str | None:
        todo = cells
        if reuse is not None:  # like a single process: cached baseline trials not paid
            todo = await reuse.take(engine, todo)
            notices(reuse.summary())
        await engine.run_cells(todo, label=f"stage {spec.stage} shard {spec.index}/{spec.count}")
        return None

    halt = session.execute(its_cells).halt
    info = ShardInfo(spec=spec.record(), units=len(units), trials=len(run.trials()),
                     spent_usd=round(run.spent_usd(), 6), budget_usd=session.share_usd,
                     halt=halt)
    run.write_shard(info)
    notices.line(f"[gate] stage {spec.stage} shard {spec.index}/{spec.count}: {info.trials} "
                 f"trials, ${info.spent_usd:.4f} of ${info.budget_usd:.4f}"
                 + ("" if halt is None else f"; halted: {halt.reason}"))
    return info


# --- the decision job ----------------------------------------------------------------------


@dataclasses.dataclass
class Merged:
    results: Results
    stages: Stages

    @property
    def next_stage(self) -> int | None:
        return self.stages.next_stage


def github_output_lines(merged: Merged) -> list[str]:
    """What the decision job writes to GITHUB_OUTPUT (the next stage and its budget)."""
    left = max(0.0, merged.stages.ceiling_usd - merged.stages.spent_usd)
    nxt = merged.next_stage
    return [f"next_stage={'' if nxt is None else nxt}",
            f"verdict={merged.results.verdict or ''}",
            f"stage_budget_usd={'' if nxt is None else f'{left:.6f}'}"]


Loaded = tuple[Path, Manifest, ShardInfo]


def _load_shard(path: Path) -> Loaded:
    run = RunDir(path)
    info_path = run.file(SHARD)
    for p in (run.manifest_path, info_path):
        if not p.exists():
            raise ConfigError.one(str(p), None, "not a shard directory (missing)")
    info = run.shard()
    if info is None or info.trials is None:
        raise ConfigError.one(str(info_path), None, "the shard did not finish (no outcome)")
    return path, run.manifest(), info


def _check_same(ref: Manifest, other: Manifest, where: str) -> None:
    changed = [k for k in SAME if getattr(ref, k) != getattr(other, k)]
    if changed:
        raise ConfigError.one(where, None, "does not belong to this sweep (differs in "
                              + ", ".join(changed) + ")")


def _check_shards(loaded: list[Loaded]) -> ShardSpec:
    first = loaded[0][2].spec
    for path, manifest, info in loaded:
        _check_same(loaded[0][1], manifest, str(path))
        s = info.spec
        if (s.count, s.stage, s.stages) != (first.count, first.stage, first.stages):
            raise ConfigError.one(str(path), None, "shard of another stage or shard count")
    indices = sorted(i.spec.index for _p, _m, i in loaded)
    if indices != list(range(1, first.count + 1)):
        missing = sorted(set(range(1, first.count + 1)) - set(indices))
        raise ConfigError.one(str(loaded[0][0]), None,
                              f"stage {first.stage}: shards {indices} given; missing "
                              f"{missing or 'none'} (or given twice)")
    return ShardSpec(1, first.count, first.stage, first.stages)


def merge(out: Path, shard_dirs: list[Path], *, budget_usd: float | None = None,
          notices: Notices | None = None, comparison: Comparison | None = None) -> Merged:
    notices = notices or Notices()
    loaded = [_load_shard(p) for p in shard_dirs]
    spec = _check_shards(loaded)
    manifest, stages = _merged_manifest(out, loaded, spec, budget_usd, comparison)
    units = units_of(manifest.scope)
    order = {u.trial_id(arm): (k, j) for k, u in enumerate(units)
             for j, arm in enumerate(manifest.scope.arms)}
    sources = [RunDir(out)] + [RunDir(p) for p, _m, _i in loaded]
    trials = _union([src.trials() for src in sources], key=lambda t: t.trial_id)
    trials.sort(key=lambda t: order.get(t.trial_id, (len(units), 0)))
    audit_lines = [src.audit_lines() for src in sources]  # all validated before any is copied
    audit = _union(audit_lines, key=lambda a: json.dumps(a.to_json(), sort_keys=True))
    beats = [b for src in sources for b in src.heartbeats()]
    merged = RunDir(out)
    replace_jsonl(merged.file(TRIALS), trials)
    replace_jsonl(merged.file(AUDIT), audit)
    replace_jsonl(merged.file(HEARTBEAT), beats)
    _merge_transcripts(out, [src.path for src in sources], trials)
    halt = next((i.halt for _p, _m, i in loaded if i.halt is not None), None)
    return _decide(out, manifest, stages, units, spec, halt, loaded, notices)


def _merge_transcripts(out: Path, sources: list[Path], trials: list[Trial]) -> None:
    """The transcripts the merged trials cite, from whichever directory holds them."""
    found: dict[str, Transcript] = {}
    for src in sources:
        found.update(read_transcripts(src))
    cited = (t.transcript_sha256 for t in trials)
    write_transcripts(out, [found[sha] for sha in cited if sha is not None and sha in found])


def _merged_manifest(out: Path, loaded: list[Loaded], spec: ShardSpec, budget_usd: float | None,
                     comparison: Comparison | None = None) -> tuple[Manifest, Stages]:
    ref = loaded[0][1]
    run = RunDir(out)
    if run.has_manifest():
        manifest = run.manifest()
        _check_same(manifest, ref, str(loaded[0][0]))
        stages = run.stages()
        if stages is None:
            raise ConfigError.one(str(run.file(STAGES)), None,
                                  "missing: this directory holds no merged sharded sweep")
        if spec.stage in [s.stage for s in stages.run]:
            raise ConfigError.one(str(out), None, f"stage {spec.stage} is already merged here")
        if stages.max != spec.stages:
            raise ConfigError.one(str(out), None, "the shards declare another maximum number "
                                  "of stages than this run")
        shared = shared_baseline([manifest] + [m for _p, m, _i in loaded])
        if shared != manifest.shared_baseline:  # this stage's shards found more sharers
            manifest = manifest.model_copy(update={"shared_baseline": shared})
            run.write_manifest(manifest)
        return manifest, stages
    if spec.stage != 1:
        raise ConfigError.one(str(out), None, f"stage {spec.stage}: no run directory from the "
                              "previous stages here (restore it first)")
    out.mkdir(parents=True, exist_ok=True)
    ceiling = budget_usd if budget_usd is not None else _config_ceiling(ref)
    budget = budget_snapshot(Budget(ceiling),
                             "--budget-usd" if budget_usd is not None else "gate.yaml")
    manifest = ref.model_copy(update={
        "command": sys.argv[1:], "budget": budget,
        "comparison": comparison,  # gate merge --ledger
        "shared_baseline": shared_baseline([m for _p, m, _i in loaded])})
    run.write_manifest(manifest)
    return manifest, Stages(max=spec.stages, run=[], next_stage=None, ceiling_usd=ceiling,
                            spent_usd=0.0)


def shared_baseline(manifests: list[Manifest]) -> SharedBaseline | None:
    """Who shares the baseline cache with a merged run: what each of its shards' manifests
    recorded when the shard started (they may have found different caches), together: every
    candidate any of them saw, and the most earlier sweeps any one of them saw."""
    seen = [m.shared_baseline for m in manifests if m.shared_baseline is not None]
    if not seen:
        return None
    return SharedBaseline(candidates=sorted({c for s in seen for c in s.candidates}),
                          runs=max(s.runs for s in seen))


def _config_ceiling(ref: Manifest) -> float:
    if not Path(ref.config_path).exists():
        return ref.budget.ceiling_usd
    return load_project(ref.config_path).config.budget.ceiling_usd


def _decide(out: Path, manifest: Manifest, stages: Stages, units: list[Unit],
            spec: ShardSpec, halt: HaltRecord | None, loaded: list[Loaded],
            notices: Notices) -> Merged:
    run = RunDir(out)
    trials = run.trials()
    test, _log = replay(manifest.statistics, trials, units, manifest.slos)
    spent = run.spent_usd()
    more = last_batch_of_stage(units, spec.stage, spec.stages) < (units[-1].batch if units
                                                                  else 0)
    undecided = test.verdict == "continue" and halt is None
    next_stage = spec.stage + 1 if undecided and more and spec.stage < spec.stages else None
    stopped = None
    if undecided:
        stopped = (f"stage {spec.stage} of {spec.stages} undecided: stage {next_stage} needed"
                   if next_stage else f"undecided after the last stage ({spec.stages})")
    merged = StageRun(stage=spec.stage, shards=spec.count,
                      trials=sum(i.trials or 0 for _p, _m, i in loaded),
                      spent_usd=round(sum(i.spent_usd or 0.0 for _p, _m, i in loaded), 6))
    stages = stages.model_copy(update={"run": [*stages.run, merged], "next_stage": next_stage,
                                       "spent_usd": round(spent, 6)})
    run.write_stages(stages)
    notices.line(f"[gate] merged stage {spec.stage} of {spec.stages} ({spec.count} shards): "
                 f"{len(trials)} trials, ${spent:.4f} of ${stages.ceiling_usd:.4f}"
                 + (f"; next stage {next_stage}" if next_stage else ""))
    results = finish_results(run, halt=halt, stopped=stopped)
    return Merged(results, stages)


def _union(sources: list[list[L]], key: Callable[[L], str]) -> list[L]:
    """The lines of every source, each once (the first seen), in order."""
    seen: set[str] = set()
    rows: list[L] = []
    for source in sources:
        for row in source:
            k = key(row)
            if k not in seen:
                seen.add(k)
                rows.append(row)
    return rows
