"""``gate verify``: re-derive results from the raw artifacts and compare.

Fails when any figure differs, when an artifact's hash differs from the one the results cite,
or when a scored trial cites a response id the audit log does not hold (a fabricated trial).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from gate.config.schema import SloConfig
from gate.engine.jsonl import read_jsonl
from gate.engine.results import compute_results, file_sha256
from gate.engine.rundir import PARTIAL, RESULTS, read_json


def verify_run(run_dir: Path) -> list[str]:
    """Differences found (empty when the results are exactly re-derived)."""
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        return [f"{manifest_path}: missing"]
    results_file = next((run_dir / n for n in (RESULTS, PARTIAL) if (run_dir / n).exists()), None)
    if results_file is None:
        return [f"{run_dir}: no {RESULTS} or {PARTIAL}"]
    manifest = read_json(manifest_path)
    stored = read_json(results_file)
    trials = read_jsonl(run_dir / "trials.jsonl")
    audit = read_jsonl(run_dir / "audit.jsonl")
    problems = _fabrication(trials, audit)
    evidence = {
        "audit_sha256": file_sha256(run_dir / "audit.jsonl"),
        "trials_sha256": file_sha256(run_dir / "trials.jsonl"),
        "manifest_sha256": file_sha256(manifest_path),
        "response_ids": sum(1 for a in audit if a.get("response_id")),
        "attempts": len(audit),
    }
    extra: dict[str, Any] = {}
    if manifest["kind"] == "sweep":
        from gate.engine.sweep import sweep_decision

        stopped = (stored.get("decision") or {}).get("stopped")
        decision, verdict = sweep_decision(manifest, trials, stopped)
        extra = {"decision": decision, "verdict": verdict,
                 "slo_config": SloConfig.model_validate(manifest["slos"])}
    derived = compute_results(manifest, trials, audit, halt=stored.get("halt"),
                              lost_share_inconclusive=manifest["run"]["lost_share_inconclusive"],
                              evidence=evidence, **extra)
    if results_file.name == PARTIAL:
        from gate.engine.rundir import _missing

        derived["missing"] = _missing(derived)
    problems += _diff(_normal(stored), _normal(derived), "")
    return problems


def _fabrication(trials: list[dict[str, Any]], audit: list[dict[str, Any]]) -> list[str]:
    ok_ids = {(a["arm"], a["task"], a["round"], a["response_id"])
              for a in audit if a["outcome"] == "ok" and a.get("response_id")}
    seen: Counter[str] = Counter(a["response_id"] for a in audit
                                 if a["outcome"] == "ok" and a.get("response_id"))
    problems = [f"response id {rid!r} appears {n} times in the audit log (one response, one "
                "line)" for rid, n in sorted(seen.items()) if n > 1]
    problems += _reused(trials, audit)
    for t in trials:
        if t.get("status") != "scored":
            continue
        ids = t.get("response_ids") or []
        if not ids:
            problems.append(f"trial {t['trial_id']}: scored without any provider response id")
        for rid in ids:
            if (t["arm"], t["task"], t["round"], rid) not in ok_ids:
                problems.append(f"trial {t['trial_id']}: response id {rid!r} is not in the "
                                "audit log (fabricated trial?)")
    return problems


def _reused(trials: list[dict[str, Any]], audit: list[dict[str, Any]]) -> list[str]:
    """A reused trial's response ids are on audit lines copied from the run it names."""
    copied = {(a["arm"], a["task"], a["round"], a.get("response_id"), a["reused_from"])
              for a in audit if a.get("reused_from")}
    problems = []
    for t in trials:
        origin = t.get("reused_from")
        if not origin:
            continue
        for rid in t.get("response_ids") or []:
            if (t["arm"], t["task"], t["round"], rid, origin["run_id"]) not in copied:
                problems.append(f"trial {t['trial_id']}: reused from run {origin['run_id']} "
                                f"but response id {rid!r} is not on an audit line copied "
                                "from that run")
    return problems


def _normal(data: Any) -> Any:
    return json.loads(json.dumps(data, sort_keys=True))


def _diff(a: Any, b: Any, where: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            out += _diff(a.get(key), b.get(key), f"{where}.{key}" if where else key)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b, strict=True))
                for p in _diff(x, y, f"{where}[{i}]")]
    if a != b:
        return [f"{where}: results say {_short(a)}, artifacts give {_short(b)}"]
    return []


def _short(x: Any) -> str:
    text = json.dumps(x)
    return text if len(text) < 80 else text[:77] + "..."
