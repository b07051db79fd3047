"""An agent program gate can run per trial: the official `openai` SDK (streaming) for the model,
the official `mcp` client for the tools.

gate starts it in the repository root with OPENAI_BASE_URL and OPENAI_API_KEY (gate's
recording endpoint and a per-trial token), GATE_MODEL, GATE_MCP_URL, GATE_INSTRUCTION and
GATE_SYSTEM_PROMPT_FILE. The loop: list the tools, ask the model, call the tools it asks for
through MCP, repeat until it answers without a tool call; print that answer and exit 0.

With ``agent.mode: persistent`` (GATE_MODE=persistent) it is started once and reads its trials
as JSON lines on stdin (base_url, api_key, model, mcp_url, system_prompt, instruction), answering
each with one JSON line: the imports and the interpreter's start are paid once per arm, and, as
in any long-running service, the HTTP clients are made once and reused (connections kept alive):
per trial only the endpoint and key (``with_options``) and the MCP session change.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from openai import APIError, AsyncOpenAI

MAX_TURNS = 60  # gate enforces the task's step limit itself


async def main() -> int:
    if os.environ.get("GATE_MODE") == "persistent":
        return await serve_trials()
    system = Path(os.environ["GATE_SYSTEM_PROMPT_FILE"]).read_text(encoding="utf-8")
    llm = AsyncOpenAI(max_retries=0)  # OPENAI_BASE_URL / OPENAI_API_KEY; gate retries itself
    async with llm, mcp_http() as http:
        answer = await solve(llm, os.environ["GATE_MODEL"], tools_at(os.environ["GATE_MCP_URL"],
                             http), system, os.environ["GATE_INSTRUCTION"])
    if answer is None:
        print("no final answer within the turn limit", file=sys.stderr)
        return 1
    print(answer)
    return 0


async def serve_trials() -> int:
    """Persistent mode: one JSON line per trial on stdin, one JSON line per answer."""
    llm = AsyncOpenAI(api_key="per-trial", max_retries=0)  # each trial has its own key
    async with llm, mcp_http() as http:
        while line := await asyncio.to_thread(sys.stdin.readline):
            trial = json.loads(line)
            reply: dict[str, Any] = {"task_id": trial["task_id"]}
            try:
                reply["answer"] = await solve(
                    llm.with_options(base_url=trial["base_url"], api_key=trial["api_key"]),
                    trial["model"], tools_at(trial["mcp_url"], http), trial["system_prompt"],
                    trial["instruction"])
            except* APIError as failed:  # e.g. the trial's step limit: answer, take the next
                reply["error"] = "; ".join(str(exc) for exc in leaves(failed))
                print(f"{trial['task_id']}: {reply['error']}", file=sys.stderr, flush=True)
            print(json.dumps(reply), flush=True)
    return 0


def leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    """The exceptions in a group (the MCP client's task group nests them)."""
    return [leaf for exc in group.exceptions
            for leaf in (leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])]


def mcp_http() -> httpx2.AsyncClient:
    """One HTTP client for every MCP session (the mcp SDK's timeouts: 30 s, reads 300 s)."""
    return httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300))


def tools_at(mcp_url: str, http: httpx2.AsyncClient) -> Client:
    """An MCP client for one trial's tools, over the shared HTTP client."""
    return Client(streamable_http_client(mcp_url, http_client=http))


async def solve(llm: AsyncOpenAI, model: str, tools_client: Client, system: str,
                instruction: str) -> str | None:
    """The agent loop for one task: its final answer, or None at the turn limit."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system},
                                      {"role": "user", "content": instruction}]
    async with tools_client as tools_server:
        listed = await tools_server.list_tools()
        tools = [{"type": "function", "function": {
            "name": t.name, "description": t.description or "", "parameters": t.input_schema}}
            for t in listed.tools]
        for _ in range(MAX_TURNS):
            content, calls = await ask(llm, model, messages, tools)
            messages.append({"role": "assistant", "content": content or None,
                             **({"tool_calls": calls} if calls else {})})
            if not calls:
                return content
            for call in calls:
                text = await run_tool(tools_server, call)
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": text})
    return None


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
