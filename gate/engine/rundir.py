"""The run directory: manifest.json, audit.jsonl, heartbeat.jsonl, trials.jsonl,
results.json or PARTIAL-RESULTS.json, report.md (the README's "Run directory" section)."""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

from gate import __version__
from gate.config.schema import SloConfig
from gate.engine.audit import read_audit
from gate.engine.jsonl import read_jsonl
from gate.engine.plan import plan_units
from gate.engine.results import compute_results, evidence_of
from gate.engine.runner import Arm
from gate.project.load import Project
from gate.records import (
    BudgetSnapshot,
    Decision,
    HaltRecord,
    Manifest,
    PartialResults,
    PlannedScope,
    Results,
    Trial,
    Verdict,
    read_record,
    write_record,
)

RESULTS = "results.json"
PARTIAL = "PARTIAL-RESULTS.json"


def git_sha(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("GITHUB_SHA")
    return out.stdout.strip() or None


def build_manifest(
    project: Project,
    *,
    kind: str,
    arms: list[Arm],
    max_rounds: int,
    seed: int,
    budget: BudgetSnapshot,
    command: list[str],
    schedule: str = "rounds",
    plan_salt: str | None = None,
) -> Manifest:
    hashes: dict[str, str] = dict(project.hashes)
    for arm in arms:
        if arm.project is not project:
            hashes.update(arm.project.hashes)
    return Manifest.model_validate({
        "run_id": f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        "kind": kind,
        "gate_version": __version__,
        "git_sha": git_sha(project.root),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "config_path": project.config_path,
        "config_sha256": project.config_sha256,
        "files_sha256": dict(sorted(hashes.items())),
        "arms": [a.describe() for a in arms],
        "scope": _scope(project, arms, max_rounds, plan_salt or str(seed), schedule),
        "seed": seed,
        "plan_salt": plan_salt,
        "statistics": project.config.statistics,
        "slos": project.config.slos,
        "run": project.config.run,
        "budget": budget,
        "subset": project.subset,
    })


def _scope(project: Project, arms: list[Arm], max_rounds: int, salt: str,
           schedule: str) -> PlannedScope:
    """The declared scope: every (arm, unit) cell the run may run, decided before any call."""
    tasks = [lt.task.id for lt in project.tasks]
    units = plan_units(schedule, tasks, max_rounds, salt, project.config.statistics.batch)
    return PlannedScope.model_validate({
        "schedule": schedule,
        "arms": [a.name for a in arms],
        "tasks": tasks,
        "max_rounds": max_rounds,
        "units": [(u.index, u.task, u.batch) for u in units],
        "cells": len(arms) * len(units),
    })


def results_path(out_dir: Path, status: str) -> Path:
    return out_dir / (RESULTS if status in ("complete", "inconclusive") else PARTIAL)


def as_written(results: Results) -> Results:
    """The record as it is written: a ``PartialResults`` saying what is missing when the run
    did not finish, the ``Results`` themselves otherwise."""
    if results_path(Path("."), results.status).name == RESULTS:
        return results
    counts = results.scope.counts
    missing = (f"{counts.not_run} of {results.scope.planned} planned cells were not run "
               f"({results.status}); resume with --resume to complete them")
    return PartialResults(**dict(results), missing=missing)


def write_results(out_dir: Path, results: Results) -> Path:
    """results.json for finished runs; PARTIAL-RESULTS.json (saying what is missing) else."""
    path = results_path(out_dir, results.status)
    other = out_dir / (PARTIAL if path.name == RESULTS else RESULTS)
    write_record(path, as_written(results))
    if other.exists():
        other.unlink()
    return path


def read_manifest(run_dir: Path) -> Manifest:
    return read_record(run_dir / "manifest.json", Manifest)


def read_results(path: Path) -> Results:
    """results.json or PARTIAL-RESULTS.json, each validated against its own model."""
    return read_record(path, PartialResults if path.name == PARTIAL else Results)


def finish_results(
    out: Path,
    manifest: Manifest,
    *,
    halt: HaltRecord | None,
    lost_share: float,
    decision: Decision | None = None,
    verdict: Verdict | None = None,
    slo_config: SloConfig | None = None,
) -> Results:
    """Derive the results from the files in ``out`` and write results.json (or
    PARTIAL-RESULTS.json). Rendering report.md is the command layer's job."""
    trials = read_jsonl(out / "trials.jsonl", Trial)
    audit = read_audit(out / "audit.jsonl")
    results = compute_results(manifest, trials, audit, halt=halt,
                              lost_share_inconclusive=lost_share,
                              evidence=evidence_of(out, audit), decision=decision,
                              verdict=verdict, slo_config=slo_config)
    write_results(out, results)
    return results
