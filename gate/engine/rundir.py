"""A run's manifest, built before any call, and its results, derived from the run directory
alone (``derive_results``): finishing a run, merging shards and ``gate verify`` all derive them
the same way. The files themselves belong to ``gate.rundir``."""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

from gate import __version__
from gate.engine.decision import DECISION_METHOD
from gate.engine.plan import plan_units
from gate.engine.results import compute_results, evidence_of
from gate.engine.runner import Arm
from gate.engine.verdict import sweep_decision
from gate.project.load import Project
from gate.providers.base import withheld_fields
from gate.providers.names import genai_provider_name
from gate.records import (
    BudgetSnapshot,
    HaltRecord,
    Manifest,
    PlannedScope,
    Results,
)
from gate.rundir import RunDir


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
        "provider_names": {key: genai_provider_name(cfg)
                           for key, cfg in sorted(project.config.providers.items())},
        "withheld_fields": withheld_by_provider(project),
        "subset": project.subset,
        "agent_distributions": project.agent_distributions,
        "decision_method": DECISION_METHOD,
    })


def withheld_by_provider(project: Project) -> dict[str, list[str]]:
    """Provider -> gate's own fields left out of its chat completions (declared unsupported)."""
    withheld = {key: sorted(withheld_fields(cfg.unsupported_fields.chat_completions))
                for key, cfg in sorted(project.config.providers.items())}
    return {key: fields for key, fields in withheld.items() if fields}


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


def derive_results(run: RunDir) -> Results:
    """The results of the run in ``run``, from its manifest, trials, audit and stop.json only
    (a sweep's decision is replayed from its trials)."""
    manifest, trials, audit, stop = run.manifest(), run.trials(), run.audit(), run.stop()
    decision = verdict = None
    if manifest.kind == "sweep":
        decision, verdict = sweep_decision(manifest, trials, stop.stopped)
    return compute_results(manifest, trials, audit, halt=stop.halt,
                           lost_share_inconclusive=manifest.run.lost_share_inconclusive,
                           evidence=evidence_of(run, audit), decision=decision,
                           verdict=verdict,
                           slo_config=manifest.slos if manifest.kind == "sweep" else None)


def finish_results(run: RunDir, *, halt: HaltRecord | None, stopped: str | None = None
                   ) -> Results:
    """Record why the run stopped, derive its results and write results.json (or
    PARTIAL-RESULTS.json). Rendering report.md is the command layer's job."""
    run.write_stop(halt, stopped)
    results = derive_results(run)
    run.write_results(results)
    return results
