"""A stdlib-only persistent agent program for gate's tests: per trial line, one model call through
the trial's endpoint, then an answer line; exits 4 on the task whose id contains "hard-02".
Records in agent-log/ (the working directory) its pid when it starts, with its CPU priority
and session per model (GATE_MODEL), its pid per task, the (task, model, pid) of every trial in
order, and every token (under a lock: processes of several arms run at once). Started per trial
(stdin empty) it records its start and exits 0. With PROBE_AWAIT_MODEL set (agent.env), a trial
of another model waits, 30 s at most, for a trial of that model to be recorded, and records
whether one was."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
import urllib.request
from pathlib import Path


def record(name: str, key: str, value: object) -> None:
    path = Path("agent-log") / name
    path.parent.mkdir(exist_ok=True)
    with (path.parent / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else ({} if key else [])
        if key:
            data[key] = value
        else:
            data.append(value)
        path.write_text(json.dumps(data))


def seen(model: str) -> bool:
    """A trial of ``model`` was recorded, within 30 s."""
    path = Path("agent-log") / "pid_log.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and any(m == model for _, m, _ in json.loads(path.read_text() or "[]")):
            return True
        time.sleep(0.05)
    return False


def main() -> int:
    record("started.json", "", os.getpid())
    record("priority.json", os.environ.get("GATE_MODEL", ""), {
        "nice": os.nice(0), "sid": os.getsid(0), "own_group": os.getpgid(0) == os.getpid()})
    awaited = os.environ.get("PROBE_AWAIT_MODEL")
    for line in sys.stdin:
        trial = json.loads(line)
        if awaited and trial["model"] != awaited:
            record("awaited.json", trial["task_id"], seen(awaited))
        record("pids.json", trial["task_id"], os.getpid())
        record("pid_log.json", "", [trial["task_id"], trial["model"], os.getpid()])
        record("tokens.json", "", trial["api_key"])
        body = {"model": trial["model_alias"], "messages": [
            {"role": "system", "content": trial["system_prompt"]},
            {"role": "user", "content": trial["instruction"]}]}
        request = urllib.request.Request(
            trial["base_url"] + "/chat/completions", data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {trial['api_key']}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            json.loads(response.read())
        if "hard-02" in trial["task_id"]:
            print("probe: giving up on this one", file=sys.stderr)
            return 4
        print(json.dumps({"task_id": trial["task_id"], "answer": "done"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
