"""A stdlib-only persistent agent program for gate's tests: per trial line, one model call through
the trial's endpoint, then an answer line; exits 4 on the task whose id contains "hard-02".
Records in agent-log/ (the working directory) its pid per task, the (task, model, pid) of
every trial in order, and every token."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path


def record(name: str, key: str, value: object) -> None:
    path = Path("agent-log") / name
    path.parent.mkdir(exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else ({} if key else [])
    if key:
        data[key] = value
    else:
        data.append(value)
    path.write_text(json.dumps(data))


def main() -> int:
    for line in sys.stdin:
        trial = json.loads(line)
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
