"""Wall time of `gate smoke` on this repository's whole suite: the built-in loop, against the
example agent (official openai SDK + mcp client) in ``agent.mode: persistent`` (started once per
arm for the whole smoke, trials as JSON lines on stdin) and, with --per-trial, started for each
trial. Target: persistent within 3x the built-in loop (docs/agents.md, "Cost", has the figures).

    .venv/bin/python bench/persistent_smoke.py [--repeat 1] [--per-trial]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "agents" / "openai_mcp_agent.py"


def project(dest: Path, agent: object) -> Path:
    for name in ("models.yaml", "prompts", "tools", "fixtures", "tasks"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    config = yaml.safe_load((REPO / "gate.yaml").read_text())
    config["agent"] = agent
    (dest / "gate.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest / "gate.yaml"


def _cpu_s() -> float:
    """CPU seconds of every finished child process (gate and the programs it started)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def smoke(label: str, agent: object) -> float:
    """One ``gate smoke`` in a fresh copy of the project; its wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = project(Path(tmp), agent)
        load = os.getloadavg()[0]
        started, cpu = time.perf_counter(), _cpu_s()
        proc = subprocess.run([sys.executable, "-m", "gate", "smoke", "--config", str(cfg),
                               "--out", str(Path(tmp) / "smoke")],
                              capture_output=True, text=True, cwd=tmp)
        elapsed, cpu = time.perf_counter() - started, _cpu_s() - cpu
        report = json.loads((Path(tmp) / "smoke" / "smoke.json").read_text())
    if proc.returncode != 0:
        print(proc.stdout[-2000:] + proc.stderr[-2000:])
        raise SystemExit(f"{label}: gate smoke exited {proc.returncode}")
    print(f"{label}: {elapsed:.2f} s wall, {cpu:.2f} s CPU (gate and its programs), "
          f"{len(report['tasks'])} tasks, smoke ok {report['ok']}, load average "
          f"{load:.2f} at start", flush=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--per-trial", action="store_true")
    args = parser.parse_args()
    program = {"command": [sys.executable, str(EXAMPLE)], "timeout_s": 300}
    kinds = {"built-in loop": "builtin",
             "example agent, persistent": {**program, "mode": "persistent"}}
    if args.per_trial:
        kinds["example agent, per trial"] = program
    times: dict[str, list[float]] = {label: [] for label in kinds}
    for _ in range(args.repeat):  # interleaved, so that a change in the machine's speed
        for label, agent in kinds.items():  # during the benchmark weighs on every kind alike
            times[label].append(smoke(label, agent))
    medians = {label: statistics.median(t) for label, t in times.items()}
    builtin = medians["built-in loop"]
    for label, median in medians.items():
        print(f"median of {args.repeat}, {label}: {median:.2f} s")
    print(f"persistent / built-in: {medians['example agent, persistent'] / builtin:.2f}x "
          "(target <= 3x)")
    if args.per_trial:
        print(f"per trial / built-in: {medians['example agent, per trial'] / builtin:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
