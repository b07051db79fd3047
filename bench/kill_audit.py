"""kill -9 a sweep again and again; the audit must never count fewer requests than the provider got.

A `gate mock-server` runs in its own process (it outlives every kill) and logs each completion
request it receives to a file before it answers. A `gate sweep` against it (an `openai`-type
provider pointed at the server) is killed with SIGKILL after a random number of requests plus a
random 0-5 ms, then resumed with --resume, `--kills` times; a last --resume runs it to the end.
Then, with `audited` the attempts in audit.jsonl (gate.rundir.audit.attempts: one per request
started, a start without outcome counted as `interrupted`), `received` the requests in the
server's log and `interrupted` the audited attempts with no outcome:

    0  <=  audited - received  <=  interrupted

The start line is written right before the request is handed to the HTTP client's transport, so
a kill can land after the line and before the request reaches the server (one attempt audited,
marked `interrupted`, that the provider never received): the safe direction. A request the
provider received is never missing from the audit. And `gate verify` re-derives results.json.
Prints the figures. Exits 0 when the bounds hold and verify agrees, 1 otherwise.

Usage: python bench/kill_audit.py [--kills 20] [--project DIR] [--max-rounds 2]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("gate.yaml", "models.yaml", "prompts", "tools", "tasks", "fixtures")
KEY_ENV = "GATE_KILL_AUDIT_KEY"


def copy_project(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        if (src / name).is_dir():
            shutil.copytree(src / name, dest / name)
        else:
            shutil.copy2(src / name, dest / name)


def configure(project: Path, base_url: str | None) -> None:
    """Faults that do not stall (so kills land mid-request, not mid-wait) and, once the server
    is up, the `loop` provider pointing at it."""
    path = project / "gate.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    data["providers"]["mock"]["faults"] = {
        "rate": 0.05, "kinds": ["429", "500", "502", "error_in_body", "malformed_json"]}
    if base_url is not None:
        data["providers"]["loop"] = {
            "type": "openai", "base_url": base_url, "api_key_env": KEY_ENV, "pricing": "live",
            "concurrency": 8, "timeout_s": 10,
            "retry": {"max_attempts": 5, "initial_wait_s": 0.01, "max_wait_s": 0.05,
                      "jitter_s": 0.01, "cooldown_after": 3, "cooldown_s": 0.05},
        }
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def gate(*args: str) -> list[str]:
    return [sys.executable, "-m", "gate.cli", *args]


def start_server(project: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        gate("mock-server", "--config", str(project / "gate.yaml"), "--fault-log", str(log),
             "--seed", "5"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=project)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving" not in line:
        proc.kill()
        raise SystemExit(f"mock-server did not start: {line!r}")
    return proc, line.split("serving ", 1)[1].split()[0]


def sweep_cmd(project: Path, out: Path, smoke: Path, rounds: int, resume: bool) -> list[str]:
    return gate("sweep", "--config", str(project / "gate.yaml"), "--out", str(out),
                "--candidate", "mock/expert@0.95", "--baseline", "mock/expert",
                "--provider", "loop", "--smoke", str(smoke), "--max-rounds", str(rounds),
                "--seed", "11", "--plan-salt", "11", *(["--resume"] if resume else []))


def count_requests(log: Path) -> int:
    if not log.exists():
        return 0
    with log.open("rb") as fh:
        return fh.read().count(b'"event": "request"')


def wait_for_requests(log: Path, proc: subprocess.Popen[str], n: int,
                      limit_s: float = 60.0) -> int:
    """Wait until the server has logged ``n`` more requests or the sweep ends; how many."""
    base = count_requests(log)
    deadline = time.monotonic() + limit_s
    seen = 0
    while time.monotonic() < deadline and proc.poll() is None:
        seen = count_requests(log) - base
        if seen >= n:
            break
        time.sleep(0.001)
    return seen


def read_lines(path: Path) -> list[dict[str, Any]]:
    from gate.rundir.jsonl import read_jsonl

    return read_jsonl(path)


def run(project_src: Path, kills: int, rounds: int, seed: int) -> int:
    from gate.rundir.audit import attempts

    rng = random.Random(seed)
    env = {**os.environ, KEY_ENV: "sk-kill-audit"}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        project = base / "project"
        copy_project(project_src, project)
        configure(project, None)
        log = base / "provider-requests.jsonl"
        server, url = start_server(project, log)
        try:
            configure(project, url)
            smoke = base / "smoke"
            subprocess.run(gate("smoke", "--config", str(project / "gate.yaml"), "--out",
                                str(smoke)), check=True, env=env, cwd=project,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            before = len(read_lines(log))  # the smoke test used its own in-process server
            out = base / "run"
            started = time.monotonic()
            first = subprocess.run(sweep_cmd(project, base / "ref", smoke, rounds, False),
                                   env=env, cwd=project, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            full = time.monotonic() - started
            print(f"uninterrupted sweep: exit {first.returncode}, {full:.2f} s")
            ref_requests = len(read_lines(log)) - before
            before = len(read_lines(log))
            killed = 0
            for i in range(kills):
                resume = (out / "manifest.json").exists()
                proc = subprocess.Popen(sweep_cmd(project, out, smoke, rounds, resume), env=env,
                                        cwd=project, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
                # after a random number of requests (so the kills land while work is left: the
                # targets add up to at most 90 % of an uninterrupted sweep's requests), then a
                # random fraction of a request's time, so a kill can land anywhere in a request
                target = rng.randint(1, max(1, int(0.9 * ref_requests / kills)))
                seen = wait_for_requests(log, proc, target)
                delay = rng.uniform(0.0, 0.005)
                time.sleep(delay)
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed += 1
                proc.wait()
                state = "killed" if proc.returncode < 0 else "had finished"
                when = f"after {seen} requests (target {target}) + {delay * 1000:.1f} ms"
                print(f"kill {i + 1:2d}: {when}; {state}", flush=True)
            last = subprocess.run(sweep_cmd(project, out, smoke, rounds,
                                             (out / "manifest.json").exists()),
                                  env=env, cwd=project, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            verify = subprocess.run(gate("verify", "--run", str(out)), env=env, cwd=project,
                                    capture_output=True, text=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        received = sum(1 for e in read_lines(log)[before:] if e.get("event") == "request")
        lines = read_lines(out / "audit.jsonl")
        folded = attempts(lines)
        kinds = Counter(a["outcome"] for a in folded)
        started_lines = sum(1 for a in lines if a.get("phase") == "started")
        print(f"provider requests received: {received} (uninterrupted sweep: {ref_requests})")
        print(f"audit: {len(folded)} attempts ({started_lines} started lines), outcomes "
              f"{dict(sorted(kinds.items()))}")
        print(f"kills: {killed} of {kills}; final resume exit {last.returncode}; "
              f"verify exit {verify.returncode} {verify.stdout.strip()[:200]}")
        over = len(folded) - received
        interrupted = kinds.get("interrupted", 0)
        held = 0 <= over <= interrupted and received > 0
        print(f"0 <= audited - received <= interrupted: {held} (audited {len(folded)}, "
              f"received {received}, interrupted {interrupted})")
        print(f"requests the audit missed: {max(0, -over)}; audited starts the provider never "
              f"received: {max(0, over)}")
        if verify.returncode != 0 or not held:
            return 1  # a request paid for and not audited, or results not re-derived
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--project", type=Path, default=REPO)
    parser.add_argument("--max-rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    return run(args.project, args.kills, args.max_rounds, args.seed)


if __name__ == "__main__":
    sys.exit(main())
