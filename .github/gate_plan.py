"""Plan one stage of the PR's sweeps for gate.yml: print `matrix=<json>` and `any=<bool>`.

Inputs (environment): SWEEPS (gate changes' matrix JSON), GATE_SHARDS, GATE_MAX_STAGES,
GATE_PR_BUDGET_USD, CONTINUE ("true" when the PR has the `gate:continue` label). The run
directories restored from the cache (runs/<id>/stages.json, written by `gate merge`) say which
stage comes next and what was spent. Stage 1 runs without the label; a later stage only with it.
One budget per PR: split evenly over the sweeps; a stage gets what is left of its sweep's share.
Every shard of a sweep draws the same plan: stage 1 draws a fresh random plan salt per sweep, a
later stage reads the one recorded in the merged run's manifest.json.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def main() -> None:
    sweeps = json.loads(os.environ["SWEEPS"]).get("include", [])
    shards = int(os.environ["GATE_SHARDS"])
    per_sweep = float(os.environ["GATE_PR_BUDGET_USD"]) / max(len(sweeps), 1)
    go_on = os.environ.get("CONTINUE") == "true"
    include = []
    for sweep in sweeps:
        stages_file = Path("runs") / str(sweep["id"]) / "stages.json"
        stages = json.loads(stages_file.read_text()) if stages_file.exists() else None
        if stages is None:
            stage, spent = 1, 0.0
        elif stages.get("next_stage") and go_on:
            stage, spent = int(stages["next_stage"]), float(stages.get("spent_usd", 0.0))
        else:
            continue  # decided, or waiting for `gate:continue`: the report shows the run as is
        left = max(0.0, per_sweep - spent)
        salt = plan_salt(Path("runs") / str(sweep["id"]) / "manifest.json", stage)
        for shard in range(1, shards + 1):
            include.append({**sweep, "stage": stage, "shard": shard, "plan_salt": salt,
                            "stage_budget_usd": f"{left:.6f}", "sweep_budget_usd":
                            f"{per_sweep:.6f}"})
    print(f"matrix={json.dumps({'include': include}, separators=(',', ':'))}")
    print(f"any={'true' if include else 'false'}")


def plan_salt(manifest: Path, stage: int) -> str:
    """The sweep's plan salt: fresh for stage 1, the merged run's for a later stage."""
    if stage > 1 and manifest.exists():
        salt = json.loads(manifest.read_text()).get("plan_salt")
        if salt:
            return str(salt)
    return secrets.token_hex(8)


if __name__ == "__main__":
    main()
