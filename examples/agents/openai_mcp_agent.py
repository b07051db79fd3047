"""An agent program gate can run per trial: the official `openai` SDK (streaming) for the model,
the official `mcp` client for the tools.

gate starts it in the repository root with OPENAI_BASE_URL and OPENAI_API_KEY (gate's
recording endpoint and a per-trial token), GATE_MODEL, GATE_MCP_URL, GATE_INSTRUCTION and
GATE_SYSTEM_PROMPT_FILE. The loop: list the tools, ask the model, call the tools it asks for
through MCP, repeat until it answers without a tool call; print that answer and exit 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from mcp import Client
from openai import AsyncOpenAI

MAX_TURNS = 60  # gate enforces the task's step limit itself


def first_messages() -> list[dict[str, Any]]:
    """The arm's system prompt and the task's instruction, as gate's own loop sends them."""
    system = Path(os.environ["GATE_SYSTEM_PROMPT_FILE"]).read_text(encoding="utf-8")
    return [{"role": "system", "content": system},
            {"role": "user", "content": os.environ["GATE_INSTRUCTION"]}]


async def main() -> int:
    model = os.environ["GATE_MODEL"]
    messages = first_messages()
    llm = AsyncOpenAI(max_retries=0)  # OPENAI_BASE_URL / OPENAI_API_KEY; gate retries itself
    async with Client(os.environ["GATE_MCP_URL"]) as tools_server:
        listed = await tools_server.list_tools()
        tools = [{"type": "function", "function": {
            "name": t.name, "description": t.description or "", "parameters": t.input_schema}}
            for t in listed.tools]
        for _ in range(MAX_TURNS):
            content, calls = await ask(llm, model, messages, tools)
            messages.append({"role": "assistant", "content": content or None,
                             **({"tool_calls": calls} if calls else {})})
            if not calls:
                print(content)
                return 0
            for call in calls:
                text = await run_tool(tools_server, call)
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": text})
    print("no final answer within the turn limit", file=sys.stderr)
    return 1


async def ask(llm: AsyncOpenAI, model: str, messages: list[dict[str, Any]],
              tools: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """One streamed model call: the text and the tool calls, reassembled from the deltas."""
    stream = await llm.chat.completions.create(
        model=model, messages=messages, tools=tools, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    async for chunk in stream:
        if not chunk.choices:
            continue  # the usage chunk
        delta = chunk.choices[0].delta
        if delta.content:
            content.append(delta.content)
        for tc in delta.tool_calls or []:
            call = calls.setdefault(tc.index, {"id": "", "type": "function",
                                               "function": {"name": "", "arguments": ""}})
            if tc.id:
                call["id"] = tc.id
            if tc.function and tc.function.name:
                call["function"]["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                call["function"]["arguments"] += tc.function.arguments
    return "".join(content), [calls[i] for i in sorted(calls)]


async def run_tool(tools_server: Client, call: dict[str, Any]) -> str:
    """Call one tool through MCP; arguments that are not a JSON object go back as an error."""
    try:
        args = json.loads(call["function"]["arguments"] or "{}")
    except ValueError as exc:
        return json.dumps({"error": f"arguments are not valid JSON: {exc}"})
    if not isinstance(args, dict):
        return json.dumps({"error": "arguments must be a JSON object"})
    result = await tools_server.call_tool(call["function"]["name"], args)
    return "".join(block.text for block in result.content if block.type == "text")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
