"""``gate plan``: the next stage of a PR's sweeps, as a GitHub Actions matrix.

Inputs: the sweeps (``gate changes``' ``matrix`` JSON), the shard count, the PR budget, and
whether the PR has the ``gate:continue`` label. The run directories restored from the cache
(``RUNS/<id>/stages.json``, written by ``gate merge``) say which stage comes next and what was
spent. Stage 1 runs without the label; a later stage only with it. One budget per PR, split
evenly over the sweeps; a stage gets what is left of its sweep's share. Prints
``matrix=<json>`` and ``any=<true|false>`` (lines for ``$GITHUB_OUTPUT``). Exit 0, or 4 on
input that is not what ``gate changes`` writes.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from gate.errors import ConfigError
from gate.records import Stages
from gate.rundir import RunDir


def _sweeps(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError.one("--sweeps", None, f"not JSON: {exc.msg}") from None
    include = data.get("include", []) if isinstance(data, dict) else None
    if not isinstance(include, list) or not all(
            isinstance(s, dict) and isinstance(s.get("id"), str) for s in include):
        raise ConfigError.one("--sweeps", None, 'expected {"include": [{"id": ...}, ...]}')
    return include


def _stages(runs: Path, sweep_id: str) -> Stages | None:
    """stages.json of the sweep's run directory under ``runs`` (a ``Stages`` record: anything
    else is exit 4 naming the file), or None when that sweep has not run yet."""
    return RunDir(runs / sweep_id).stages()


def plan_stage(sweeps: list[dict[str, Any]], shards: int, pr_budget_usd: float,
               go_on: bool, runs: Path) -> list[dict[str, Any]]:
    per_sweep = pr_budget_usd / max(len(sweeps), 1)
    include: list[dict[str, Any]] = []
    for sweep in sweeps:
        stages = _stages(runs, str(sweep["id"]))
        if stages is None:
            stage, spent = 1, 0.0
        elif stages.next_stage and go_on:
            stage, spent = stages.next_stage, stages.spent_usd
        else:
            continue  # decided, or waiting for `gate:continue`: the report shows the run as is
        left = max(0.0, per_sweep - spent)
        salt = _plan_salt(runs / str(sweep["id"]), stage)
        for shard in range(1, shards + 1):
            include.append({**sweep, "stage": stage, "shard": shard, "plan_salt": salt,
                            "stage_budget_usd": f"{left:.6f}",
                            "sweep_budget_usd": f"{per_sweep:.6f}"})
    return include


def _plan_salt(run_dir: Path, stage: int) -> str:
    """Every shard of a sweep draws one plan: a fresh random salt for stage 1, the merged run's
    (its manifest's ``plan_salt``) for a later stage."""
    run = RunDir(run_dir)
    if stage > 1 and run.has_manifest():
        salt = run.manifest().plan_salt
        if salt:
            return salt
    return secrets.token_hex(8)


def run_plan(sweeps: str, shards: int, pr_budget_usd: float, go_on: bool, runs: str) -> int:
    include = plan_stage(_sweeps(sweeps), shards, pr_budget_usd, go_on, Path(runs))
    print(f"matrix={json.dumps({'include': include}, separators=(',', ':'))}")
    print(f"any={'true' if include else 'false'}")
    return 0
