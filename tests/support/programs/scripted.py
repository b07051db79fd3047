"""A stdlib-only agent program for gate's tests; what it does is chosen by argv[1].

Every mode first records its pid, environment and URLs in ``agent-log/<task>.json`` under the
repository root (the program's working directory), so tests can check what it was given.

  call-then-exit-3   one model call, then "boom" on stderr and exit 3
  call-then-hang     one model call, start a grandchild `sleep`, then sleep for ever
  no-call            print an answer and exit 0 without calling the endpoint
  crash-at-start     a traceback's last line on stderr and exit 1, no call (an import error)
  probe              wrong token, wrong model, then a right call; prints the three statuses
  loop               keep calling the model (tool results faked, no MCP) until it answers
                     without a tool call or is refused
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def post(body: dict, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        os.environ["OPENAI_BASE_URL"] + "/chat/completions", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token or os.environ['OPENAI_API_KEY']}",
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def first_messages() -> list[dict]:
    system = Path(os.environ["GATE_SYSTEM_PROMPT_FILE"]).read_text(encoding="utf-8")
    return [{"role": "system", "content": system},
            {"role": "user", "content": os.environ["GATE_INSTRUCTION"]}]


def call(messages: list[dict] | None = None) -> tuple[int, dict]:
    return post({"model": os.environ["GATE_MODEL"], "messages": messages or first_messages()})


def log(extra: dict) -> None:
    folder = Path("agent-log")
    folder.mkdir(exist_ok=True)
    path = folder / f"{os.environ.get('GATE_TASK_ID', 'unknown')}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**old, **extra}))
    os.replace(tmp, path)  # atomic: the program may be killed at any moment


def loop() -> int:
    messages = first_messages()
    while True:
        status, body = call(messages)
        if status != 200:
            log({"refused": status, "error": body})
            return 1
        message = body["choices"][0]["message"]
        messages.append(message)
        if not message.get("tool_calls"):
            print(message.get("content"))
            return 0
        for tc in message["tool_calls"]:
            messages.append({"role": "tool", "tool_call_id": tc["id"], "content": "{}"})


def main() -> int:
    mode = sys.argv[1]
    log({"pid": os.getpid(), "env": dict(os.environ), "cwd": os.getcwd()})
    if mode == "crash-at-start":
        print("Traceback (most recent call last):\nModuleNotFoundError: No module named "
              "'agents'", file=sys.stderr)
        return 1
    if mode == "no-call":
        print("done without asking anyone")
        return 0
    if mode == "probe":
        wrong_token = post({"model": os.environ["GATE_MODEL"], "messages": first_messages()},
                           token="not-the-token")[0]
        wrong_model = post({"model": "some/other-model", "messages": first_messages()})[0]
        right = call()[0]
        log({"statuses": [wrong_token, wrong_model, right]})
        print("probed")
        return 0
    if mode == "loop":
        return loop()
    status, _ = call()
    log({"first_status": status})
    if mode == "call-then-exit-3":
        print("boom: the agent fell over", file=sys.stderr)
        return 3
    if mode == "call-then-hang":
        grandchild = subprocess.Popen(["sleep", "300"])
        log({"grandchild": grandchild.pid})
        time.sleep(300)
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main())
