"""``gate verify``: re-derive results from the raw artifacts and compare.

Fails when any figure differs, when an artifact's hash differs from the one the results cite,
when a scored trial cites a response id the audit log does not hold (a fabricated trial), or
when a trial's transcript is not the one it cites by hash (changed or missing).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from gate.engine.decision import DECISION_METHOD
from gate.engine.plan import plan_units
from gate.engine.rundir import derive_results
from gate.engine.transcripts import check_transcripts
from gate.records import AuditAttempt, Manifest, Record, Trial
from gate.rundir import PARTIAL, RESULTS, RunDir, as_written, read_results


def verify_run(run_dir: Path) -> list[str]:
    """Differences found (empty when the results are exactly re-derived). The results are
    derived from the run directory alone and compared with the stored ones, whole."""
    run = RunDir(run_dir)
    if not run.has_manifest():
        return [f"{run.manifest_path}: missing"]
    results_file = run.stored_results_path()
    if results_file is None:
        return [f"{run_dir}: no {RESULTS} or {PARTIAL}"]
    method = run.manifest().decision_method
    if method != DECISION_METHOD:
        return [f"{run.manifest_path}: decided by decision method {method} (gate "
                f"{run.manifest().gate_version}); this gate re-derives method {DECISION_METHOD} "
                "only: verify the run with the gate version that made it"]
    stored = read_results(results_file)
    trials = run.trials()
    problems = _fabrication(trials, run.audit()) + check_transcripts(trials, run_dir)
    problems += _plan(run.manifest())
    problems += _diff(_normal(stored), _normal(as_written(derive_results(run))), "")
    return problems


def _plan(manifest: Manifest) -> list[str]:
    """The planned units are the ones the recorded salt draws (a sweep's plan is not chosen)."""
    if manifest.kind != "sweep":
        return []
    scope = manifest.scope
    drawn = plan_units(scope.schedule, scope.tasks, scope.max_rounds,
                       manifest.plan_salt or str(manifest.seed), manifest.statistics.batch)
    if [(u.index, u.task, u.batch) for u in drawn] != [tuple(u) for u in scope.units]:
        return ["manifest.json: the planned units are not the ones plan_salt "
                f"{manifest.plan_salt!r} draws"]
    return []


def _fabrication(trials: list[Trial], audit: list[AuditAttempt]) -> list[str]:
    ok_ids = {(a.arm, a.task, a.round, a.response_id)
              for a in audit if a.outcome == "ok" and a.response_id}
    seen: Counter[str] = Counter(a.response_id for a in audit
                                 if a.outcome == "ok" and a.response_id)
    problems = [f"response id {rid!r} appears {n} times in the audit log (one response, one "
                "line)" for rid, n in sorted(seen.items()) if n > 1]
    problems += _reused(trials, audit)
    for t in trials:
        if t.status != "scored":
            continue
        if not t.response_ids:
            problems.append(f"trial {t.trial_id}: scored without any provider response id")
        for rid in t.response_ids:
            if (t.arm, t.task, t.round, rid) not in ok_ids:
                problems.append(f"trial {t.trial_id}: response id {rid!r} is not in the "
                                "audit log (fabricated trial?)")
    return problems


def _reused(trials: list[Trial], audit: list[AuditAttempt]) -> list[str]:
    """A reused trial's response ids are on audit lines copied from the run it names."""
    copied = {(a.arm, a.task, a.round, a.response_id, a.reused_from)
              for a in audit if a.reused_from is not None}
    problems = []
    for t in trials:
        if t.reused_from is None:
            continue
        for rid in t.response_ids:
            if (t.arm, t.task, t.round, rid, t.reused_from.run_id) not in copied:
                problems.append(f"trial {t.trial_id}: reused from run {t.reused_from.run_id} "
                                f"but response id {rid!r} is not on an audit line copied "
                                "from that run")
    return problems


def _normal(record: Record) -> Any:
    return json.loads(json.dumps(record.to_json(), sort_keys=True))


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
