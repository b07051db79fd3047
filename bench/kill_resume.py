"""kill -9 a sweep at random points, resume it, and compare with an uninterrupted run.

For each of N cycles: start `gate sweep` in a fresh directory, SIGKILL it after a random
delay, then `gate sweep --resume` to the end. Checks, per cycle:
- the results (verdict, decision, per-arm trials and successes) and every trial's scores equal
  those of an uninterrupted sweep with the same seed and plan salt;
- no trial id appears twice in trials.jsonl;
- no trial finished before the kill was paid for again: no audit line written after the kill
  belongs to a cell that had already finished.

Usage: python bench/kill_resume.py [--cycles 20] [--config gate.yaml]
Prints one line per cycle and a summary; exits 1 if any cycle fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SWEEP = ["--candidate", "mock/expert@0.95", "--baseline", "mock/expert", "--max-rounds", "4",
         "--seed", "11", "--plan-salt", "11"]  # the same plan in every run compared
VOLATILE = {"ts", "wall_s", "latency_s", "response_ids", "trace_id", "transcript_sha256"}


def gate_cmd(config: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gate.cli", "sweep", "--config", config, "--out", str(out),
            *SWEEP, *extra]


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for raw in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # a torn last line
            out.append(json.loads(raw))
    return out


def stable(out: Path) -> tuple[Any, Any]:
    results = json.loads((out / "results.json").read_text())
    summary = {
        "verdict": results["verdict"], "status": results["status"],
        "decision": {k: results["decision"][k] for k in
                     ("verdict", "rounds", "pairs", "e_reject", "e_accept")},
        "arms": {n: (a["trials"], a["successes"], a["pass_k"]) for n, a in
                 results["arms"].items()},
        "scope": results["scope"]["counts"],
    }
    trials = sorted(({k: v for k, v in t.items() if k not in VOLATILE}
                     for t in read_lines(out / "trials.jsonl")), key=lambda t: t["trial_id"])
    return summary, trials


def run_quiet(cmd: list[str]) -> int:
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def cycle(config: str, base: Path, i: int, delay: float, reference: Any) -> tuple[bool, str]:
    out = base / f"cycle-{i}"
    proc = subprocess.Popen(gate_cmd(config, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(delay)
    finished_early = proc.poll() is not None
    if not finished_early:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = {t["trial_id"] for t in read_lines(out / "trials.jsonl")}
    audit_at_kill = len(read_lines(out / "audit.jsonl"))
    resume = ["--resume"] if (out / "manifest.json").exists() else []
    run_quiet(gate_cmd(config, out, *resume))
    trials = read_lines(out / "trials.jsonl")
    ids = [t["trial_id"] for t in trials]
    duplicates = len(ids) - len(set(ids))
    later = read_lines(out / "audit.jsonl")[audit_at_kill:]
    repaid = sum(1 for a in later
                 if f"{a['arm']}/{a['task']}/r{a['round']}" in done_at_kill)
    same = stable(out) == reference
    ok = same and duplicates == 0 and repaid == 0
    return ok, (f"cycle {i:2d}: killed after {delay:.2f}s "
                f"({'finished first' if finished_early else f'{len(done_at_kill)} trials done'})"
                f"; resumed: {len(ids)} trials, duplicates {duplicates}, finished trials paid "
                f"again {repaid}, equal to uninterrupted: {same}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--config", default="gate.yaml")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        started = time.monotonic()
        code = run_quiet(gate_cmd(args.config, base / "reference"))
        duration = time.monotonic() - started
        reference = stable(base / "reference")
        print(f"uninterrupted sweep: exit {code}, {duration:.2f}s, verdict "
              f"{reference[0]['verdict']}, {len(reference[1])} trials")
        failures = 0
        for i in range(1, args.cycles + 1):
            ok, line = cycle(args.config, base, i, rng.uniform(0.3, duration), reference)
            failures += not ok
            print(line, flush=True)
    print(f"kill -9 / resume: {args.cycles - failures} of {args.cycles} cycles equal to the "
          f"uninterrupted run, with no duplicate and no re-paid trial")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
