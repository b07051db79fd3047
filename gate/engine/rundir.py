"""The run directory: manifest.json, audit.jsonl, heartbeat.jsonl, trials.jsonl,
results.json or PARTIAL-RESULTS.json, report.md (DESIGN.md, "Run directory")."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gate import __version__
from gate.config.load import Project
from gate.engine.plan import plan_units
from gate.engine.runner import Arm

RESULTS = "results.json"
PARTIAL = "PARTIAL-RESULTS.json"


def git_sha(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("GITHUB_SHA")
    return out.stdout.strip() or None


def write_json(path: Path, data: Any) -> None:
    """Atomic write: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def build_manifest(
    project: Project,
    *,
    kind: str,
    arms: list[Arm],
    max_rounds: int,
    seed: int,
    budget: dict[str, Any],
    command: list[str],
    schedule: str = "rounds",
) -> dict[str, Any]:
    hashes: dict[str, str] = dict(project.hashes)
    for arm in arms:
        if arm.project is not project:
            hashes.update(arm.project.hashes)
    return {
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
        "scope": _scope(project, arms, max_rounds, seed, schedule),
        "seed": seed,
        "statistics": project.config.statistics.model_dump(),
        "slos": project.config.slos.model_dump(),
        "run": project.config.run.model_dump(),
        "budget": budget,
    }


def _scope(project: Project, arms: list[Arm], max_rounds: int, seed: int,
           schedule: str) -> dict[str, Any]:
    """The declared scope: every (arm, unit) cell the run may run, decided before any call."""
    tasks = [lt.task.id for lt in project.tasks]
    units = plan_units(schedule, tasks, max_rounds, seed, project.config.statistics.batch)
    return {
        "schedule": schedule,
        "arms": [a.name for a in arms],
        "tasks": tasks,
        "max_rounds": max_rounds,
        "units": [[u.index, u.task, u.batch] for u in units],
        "cells": len(arms) * len(units),
    }


def results_path(out_dir: Path, status: str) -> Path:
    return out_dir / (RESULTS if status in ("complete", "inconclusive") else PARTIAL)


def write_results(out_dir: Path, results: dict[str, Any]) -> Path:
    """results.json for finished runs; PARTIAL-RESULTS.json (saying what is missing) else."""
    path = results_path(out_dir, results["status"])
    other = out_dir / (PARTIAL if path.name == RESULTS else RESULTS)
    if path.name == PARTIAL:
        results = {**results, "missing": _missing(results)}
    write_json(path, results)
    if other.exists():
        other.unlink()
    return path


def _missing(results: dict[str, Any]) -> str:
    counts = results["scope"]["counts"]
    return (f"{counts['not_run']} of {results['scope']['planned']} planned cells were not run "
            f"({results['status']}); resume with --resume to complete them")
