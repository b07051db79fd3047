"""The example agent (examples/agents/openai_mcp_agent.py), unchanged, with every MCP tool call
it makes appended to ``agent-log/calls-<task>-<pid>.jsonl`` in the repository root."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "agents"))
import openai_mcp_agent as example

_run_tool = example.run_tool


def log_call(call: dict[str, Any]) -> None:
    folder = Path("agent-log")
    folder.mkdir(exist_ok=True)
    path = folder / f"calls-{os.environ['GATE_TASK_ID']}-{os.getpid()}.jsonl"
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"tool": call["function"]["name"],
                            "arguments": call["function"]["arguments"]}) + "\n")


async def logged_run_tool(tools_server: Any, call: dict[str, Any]) -> str:
    log_call(call)
    return await _run_tool(tools_server, call)


example.run_tool = logged_run_tool

if __name__ == "__main__":
    sys.exit(asyncio.run(example.main()))
