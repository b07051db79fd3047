"""What the framework programs share: the trial's inputs from gate's variables, the options a
test picks (argv), an httpx client that counts the model calls the framework makes, and the
structured answer type."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pydantic

TEMPLATE = "Customer request (via web form):\n{}\n-- sent from the help centre"


class Verdict(pydantic.BaseModel):
    """A structured final answer."""

    summary: str
    actions_taken: list[str]
    resolved: bool


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", choices=["chat", "responses"], default="chat")
    parser.add_argument("--structured", action="store_true")
    parser.add_argument("--parallel", action="store_true")
    parser.add_argument("--required", action="store_true")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--template", action="store_true")
    return parser.parse_args()


def instruction(opts: argparse.Namespace) -> str:
    text = os.environ["GATE_INSTRUCTION"]
    return TEMPLATE.format(text) if opts.template else text


def system_prompt() -> str:
    return Path(os.environ["GATE_SYSTEM_PROMPT_FILE"]).read_text(encoding="utf-8")


class CallCounter:
    """Counts POSTs to the model endpoint (the framework's model calls) for the test."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith(
                ("/chat/completions", "/responses")):
            self.calls += 1

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(event_hooks={"request": [self]}, timeout=120)

    def save(self, answer: Any) -> None:
        folder = Path("agent-log")
        folder.mkdir(exist_ok=True)
        (folder / f"{os.environ['GATE_TASK_ID']}.json").write_text(json.dumps(
            {"model_calls": self.calls, "answer": answer}, default=str))
