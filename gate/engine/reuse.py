"""Baseline reuse: trials of the baseline arm taken from an earlier run instead of paid again.

A trial is reused only when everything that decides it matches: the baseline model and its
provider, the configuration, the baseline arm's prompt, tool, task and fixture files (the
model registry aside: adding a candidate to it does not change the baseline), the run seed,
and the trial's task, occurrence and seed. The earlier run's key (``baseline_key`` in its
manifest) holds all of it but the trial. Trials older than the maximum age are paid again:
providers drift.

Every run draws its own plan (``plan_salt``), so the same task sits at different positions
in two runs' plans; a trial is therefore matched by (task, occurrence): the j-th unit of task
T in this run takes the j-th unit of T from the earlier run, whose trial seed is the same
(``runner.trial_seed``). The trial keeps its original timestamp and response ids, takes this
run's trial id and round, and gains ``reused_from`` (the run that paid for it and when); its
audit lines are copied with this run's round and ``reused_from`` set to that run id, so
``gate verify`` finds every response id it cites. Its transcript is copied as it is (the
trial cites the same hash). Its trace id is the new run's (each run's traces are its own).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from gate.engine.plan import units_of
from gate.engine.transcripts import read_transcripts, transcript_of
from gate.records import (
    AuditAttempt,
    Manifest,
    ReusedFrom,
    ReusedTrial,
    ReuseFacts,
    ReuseRun,
    SharedBaseline,
    Transcript,
    Trial,
)
from gate.rundir import RunDir

if TYPE_CHECKING:
    from gate.engine.runner import Arm, Cell, Engine

DEFAULT_MAX_AGE_DAYS = 3.0


def baseline_key(arm: Arm, config_sha256: str, seed: int) -> str:
    """What must match for a baseline trial of another run to stand for this run's."""
    registry = arm.project.config.suite.registry
    files = {k: v for k, v in arm.project.hashes.items()
             if k.split(":", 1)[-1] != registry}
    payload = {"model": arm.model, "provider": arm.provider, "config_sha256": config_sha256,
               "files_sha256": dict(sorted(files.items())), "seed": seed}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class Cached:
    trial: Trial
    audit: list[AuditAttempt]
    transcript: Transcript | None = None

    def as_cell(self, cell: Cell) -> Cached:
        """The trial and its audit lines under this run's trial id and round."""
        update = {"trial_id": cell.trial_id, "round": cell.round}
        return Cached(self.trial.model_copy(update=update),
                      [a.model_copy(update={"round": cell.round}) for a in self.audit],
                      self.transcript)


Key = tuple[str, int]  # (task, occurrence)


@dataclass
class Reuse:
    """Cached baseline trials by (task, occurrence), and what was taken from them."""

    cache: dict[Key, Cached]
    taken: dict[str, int] = field(default_factory=dict)  # source run id -> trials
    # the earlier sweeps with a reusable trial in the cache (sweep_of), and their candidates
    sweeps: set[tuple[str, str]] = field(default_factory=set)

    def shared(self, manifest: Manifest) -> SharedBaseline:
        """Who shares this cache with the run of ``manifest`` (gate.records): the candidates
        of the cache's sweeps it may reuse trials from, and its own; the sweep itself (its
        shards of earlier stages, in CI's cache) is not an earlier sweep."""
        others = self.sweeps - {sweep_of(manifest)}
        return SharedBaseline(
            candidates=sorted({c for _s, c in others} | {candidate_key(manifest)}),
            runs=len(others))

    async def take(self, engine: Engine, cells: list[Cell]) -> list[Cell]:
        """Record the cached cells as this run's trials; return the cells still to run."""
        from gate.engine.runner import trial_seed

        left = []
        for cell in cells:
            key = (cell.task, cell.seed_key)
            hit = self.cache.get(key) if cell.arm == "baseline" else None
            if (hit is None or hit.trial.reused_from is None
                    or hit.trial.seed != trial_seed(engine.seed, cell.task, cell.seed_key)):
                left.append(cell)
                continue
            del self.cache[key]
            source = hit.trial.reused_from.run_id
            hit = hit.as_cell(cell)
            await engine.adopt(hit.trial, hit.audit, hit.transcript)
            self.taken[source] = self.taken.get(source, 0) + 1
        return left

    def summary(self) -> str:
        n = sum(self.taken.values())
        runs = ", ".join(f"{k} ({v})" for k, v in sorted(self.taken.items())) or "none"
        return (f"baseline reuse: {n} trials taken from earlier runs, not sent to the provider "
                f"(from: {runs})")


def load_cache(
    cache_dir: Path, key: str, *, max_age_days: float, now: datetime | None = None,
) -> Reuse:
    """The reusable baseline trials under ``cache_dir`` (a run directory or a folder of them)."""
    oldest = (now or datetime.now(UTC)) - timedelta(days=max_age_days)
    found: dict[Key, Cached] = {}
    sweeps: set[tuple[str, str]] = set()
    for run_dir in _run_dirs(cache_dir):
        manifest = read_manifest(run_dir)
        if manifest.kind != "sweep" or manifest.baseline_key != key:
            continue
        occurrence = {u.index: u.occurrence for u in units_of(manifest.scope)}
        for cached in _trials_of(run_dir, manifest.run_id):
            origin = cached.trial.reused_from
            assert origin is not None
            if _when(origin.ts) < oldest or cached.trial.round not in occurrence:
                continue
            sweeps.add(sweep_of(manifest))  # a run with a trial this one may reuse
            k = (cached.trial.task, occurrence[cached.trial.round])
            have = found.get(k)
            if have is None or (have.trial.reused_from is not None
                                and have.trial.reused_from.ts < origin.ts):
                found[k] = cached
    return Reuse(found, sweeps=sweeps)


def sweep_of(manifest: Manifest) -> tuple[str, str]:
    """One sweep, whichever directory holds it: its plan salt (every shard and stage of a
    sweep shares it; a run from before plan salts: its run id) and its candidate."""
    return (manifest.plan_salt or manifest.run_id, candidate_key(manifest))


def candidate_key(manifest: Manifest) -> str:
    """One candidate: its arm (model, provider, where its prompts and tools come from) and the
    run's file hashes (runs under one ``baseline_key`` share the baseline's files, so files
    that differ are the candidate's prompts, tools or the model registry)."""
    payload = {"arm": manifest.arms[0].to_json(), "files_sha256": manifest.files_sha256}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def read_manifest(run_dir: Path) -> Manifest:
    return RunDir(run_dir).manifest()


def _run_dirs(cache_dir: Path) -> list[Path]:
    if not cache_dir.is_dir():
        return []
    if RunDir(cache_dir).has_manifest():
        return [cache_dir]
    return sorted(p for p in cache_dir.iterdir() if RunDir(p).has_manifest())


def _trials_of(run_dir: Path, run_id: str) -> list[Cached]:
    """Scored baseline trials of one run, with their audit lines, marked with their origin."""
    audit: dict[tuple[str, int], list[AuditAttempt]] = {}
    for line in RunDir(run_dir).audit():
        if line.arm == "baseline":
            audit.setdefault((line.task, line.round), []).append(line)
    out = []
    transcripts = read_transcripts(run_dir)
    for trial in RunDir(run_dir).trials():
        if trial.arm != "baseline" or trial.status != "scored":
            continue
        lines = audit.get((trial.task, trial.round), [])
        ids = {a.response_id for a in lines if a.outcome == "ok"}
        if not trial.response_ids or not set(trial.response_ids) <= ids:
            continue  # never carry a trial its own run cannot vouch for
        origin = trial.reused_from or ReusedFrom(run_id=run_id, ts=trial.ts,
                                                 trial_id=trial.trial_id)
        out.append(Cached(trial.model_copy(update={"reused_from": origin}),
                          [a.model_copy(update={"reused_from": origin.run_id}) for a in lines],
                          transcript_of(trial, transcripts)))
    return out


def _when(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def reuse_facts(trials: list[Trial], audit: list[AuditAttempt]) -> ReuseFacts | None:
    """What results.json says about reused trials (derived from the artifacts alone)."""
    reused = [(t, t.reused_from) for t in trials if t.reused_from is not None]
    if not reused:
        return None
    runs: dict[str, list[str]] = {}
    for _t, origin in reused:
        runs.setdefault(origin.run_id, []).append(origin.ts)
    saved = sum(a.cost_computed_usd for a in audit if a.reused_from is not None)
    return ReuseFacts(
        trials=len(reused), cost_saved_usd=round(saved, 8),
        runs=[ReuseRun(run_id=r, trials=len(ts), first_ts=min(ts), last_ts=max(ts))
              for r, ts in sorted(runs.items())],
        entries=[ReusedTrial(trial_id=t.trial_id, run_id=o.run_id, ts=o.ts,
                             response_ids=list(t.response_ids)) for t, o in reused],
    )
