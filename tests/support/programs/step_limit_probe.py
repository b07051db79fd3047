"""A stdlib-only persistent agent program for gate's tests: per trial line, the same model call
again and again until the endpoint refuses one (the task's step limit), then an answer line
naming that refusal. Records its pid per task in agent-log/pids.json (the working directory)."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path


def main() -> int:
    log = Path("agent-log") / "pids.json"
    log.parent.mkdir(exist_ok=True)
    for line in sys.stdin:
        trial = json.loads(line)
        pids = json.loads(log.read_text()) if log.exists() else {}
        log.write_text(json.dumps({**pids, trial["task_id"]: os.getpid()}))
        body = json.dumps({"model": trial["model"], "messages": [
            {"role": "system", "content": trial["system_prompt"]},
            {"role": "user", "content": trial["instruction"]}]}).encode()
        status = 200
        while status == 200:
            request = urllib.request.Request(
                trial["base_url"] + "/chat/completions", data=body,
                headers={"Authorization": f"Bearer {trial['api_key']}",
                         "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status = response.status
                    response.read()
            except urllib.error.HTTPError as exc:
                status = exc.code
        print(json.dumps({"task_id": trial["task_id"], "stopped": status}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
