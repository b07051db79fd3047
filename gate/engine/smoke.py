"""``gate smoke``: the preflight drill. Proves every task, fixture and scorer works before any
money is spent (rule 2), that the heartbeat fires (rule 3) and that a 402 trips the circuit
breaker (rule 7). Writes DIR/smoke.json with the config and file hashes it vouches for."""

from __future__ import annotations

import io
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from gate.commands import execute_run
from gate.config.load import Project
from gate.engine.jsonl import read_jsonl
from gate.engine.rundir import PARTIAL, write_json
from gate.engine.session import ProviderOptions


class _HeartbeatCounter(io.StringIO):
    """Passes console text on, except heartbeat lines, which it counts."""

    def __init__(self, other: TextIO) -> None:
        super().__init__()
        self.other = other
        self.beats = 0
        self._dropping = False

    def write(self, s: str) -> int:
        if s.startswith("[gate] heartbeat:"):
            self.beats += 1
            self._dropping = True
        elif not (self._dropping and s == "\n"):
            self._dropping = False
            self.other.write(s)
        else:
            self._dropping = False
        return len(s)

    def flush(self) -> None:
        self.other.flush()


class _Tee(io.StringIO):
    def __init__(self, other: TextIO) -> None:
        super().__init__()
        self.other = other

    def write(self, s: str) -> int:
        self.other.write(s)
        return super().write(s)

    def isatty(self) -> bool:
        return False


def run_smoke(project: Project, out: Path, *, seed: int,
              console: TextIO | None = None) -> dict[str, Any]:
    console = console or sys.stderr
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("expert", "random", "breaker"):  # the smoke's own runs, redone each time
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "smoke.json").unlink(missing_ok=True)
    checks: list[dict[str, Any]] = [{"name": "validate", "ok": True,
                                     "detail": f"{len(project.tasks)} tasks valid"}]
    tasks: dict[str, dict[str, Any]] = {lt.task.id: {"task": lt.task.id} for lt in project.tasks}

    expert = execute_run(project, model="mock/expert", provider=None, rounds=1,
                         out=out / "expert", seed=seed, console=console, arm_name="expert")
    trials = read_jsonl(out / "expert" / "trials.jsonl")
    failed = []
    for t in trials:
        tasks[t["task"]]["expert"] = {"success": t.get("success"), "reward": t.get("reward")}
        if not t.get("success"):
            failed.append(t["task"])
    missing = sorted(set(tasks) - {t["task"] for t in trials})
    checks.append({
        "name": "expert solves every task",
        "ok": not failed and not missing and expert["status"] == "complete",
        "detail": (f"{len(trials) - len(failed)}/{len(tasks)} solved"
                   + (f"; broken task or fixture: {', '.join(failed)}" if failed else "")
                   + (f"; not run: {', '.join(missing)}" if missing else "")),
    })

    interval = 0.02
    quiet = _HeartbeatCounter(console)  # a beat every 20 ms would drown the log: counted only
    run_random = execute_run(project, model="mock/random", provider=None, rounds=1,
                             out=out / "random", seed=seed, console=quiet, arm_name="random",
                             heartbeat_interval_s=interval)
    rtrials = read_jsonl(out / "random" / "trials.jsonl")
    null_scores = [t["task"] for t in rtrials if t.get("reward") is None]
    for t in rtrials:
        tasks[t["task"]]["random"] = {"success": t.get("success"), "reward": t.get("reward")}
    checks.append({
        "name": "random scores every task",
        "ok": len(rtrials) == len(tasks) and not null_scores,
        "detail": f"{len(rtrials)} scored, success rate "
                  f"{run_random['arms']['random']['success_rate']}; null: {null_scores}",
    })
    beats = read_jsonl(out / "random" / "heartbeat.jsonl")
    checks.append({
        "name": "heartbeat fires",
        "ok": len(beats) >= 2 and quiet.beats >= 1
        and all("cost_usd" in b and "calls" in b for b in beats),
        "detail": f"{len(beats)} heartbeat lines at {interval}s interval "
                  f"({quiet.beats} console heartbeat lines, not shown)",
    })
    checks.append(_breaker_check(project, out / "breaker", seed, console))

    report = {
        "ok": all(c["ok"] for c in checks),
        "checks": checks,
        "tasks": [tasks[k] for k in sorted(tasks)],
        "config_sha256": project.config_sha256,
        "files_sha256": project.hashes,
        "seconds": round(time.monotonic() - started, 3),
    }
    write_json(out / "smoke.json", report)
    for c in checks:
        print(f"[{'ok' if c['ok'] else 'FAIL'}] {c['name']}: {c['detail']}", file=sys.stdout)
    print(f"smoke: {'passed' if report['ok'] else 'FAILED'} in {report['seconds']} s; "
          f"wrote {out / 'smoke.json'}", file=sys.stdout)
    return report


def _breaker_check(project: Project, out: Path, seed: int, console: TextIO) -> dict[str, Any]:
    tee = _Tee(console)
    after = 5
    print(f"[gate] smoke: simulating a 402 (payment required) after {after} calls: the "
          "[CIRCUIT BREAKER] line below is expected", file=console, flush=True)
    res = execute_run(project, model="mock/expert", provider=None, rounds=1, out=out, seed=seed,
                      console=tee, arm_name="breaker",
                      options=ProviderOptions(payment_required_after=after))
    printed = "[CIRCUIT BREAKER]" in tee.getvalue()
    print("[gate] smoke: end of the simulated 402 check", file=console, flush=True)
    partial = (out / PARTIAL).exists()
    ok = res["status"] == "halted" and printed and partial
    return {"name": "402 trips the circuit breaker", "ok": ok,
            "detail": f"status {res['status']}, [CIRCUIT BREAKER] printed: {printed}, "
                      f"{PARTIAL} written: {partial}, 402 injected after {after} calls"}
