"""The trials' tools as an MCP server (streamable HTTP): exactly the arm's tool definitions,
executed against the trial's environment instance by the built-in loop's own checking code
(unknown tool, schema-invalid arguments, repeated calls, evidence, distractors, wrong fixes),
so the tool-use metrics of a program's trial are taken the same way as the built-in loop's.

One server object serves every trial of a run: gate.agent.serve puts the trial that a request's
secret path names into the request's ASGI scope (``SCOPE_KEY``) before the MCP layer sees it.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from gate.agent.endpoint import TrialSession
from gate.agent.loop import execute_call

SCOPE_KEY = "gate.trial"
REQUESTING: ContextVar[TrialSession | None] = ContextVar("gate_mcp_trial", default=None)
"""The trial whose MCP request is being served (set by gate.agent.serve around each request)."""


def tool_server() -> Server[Any]:
    """An MCP server whose ``tools/list`` and ``tools/call`` are the requesting trial's."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=trial_tools(_session(ctx)))

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return run_tool(_session(ctx), params.name, params.arguments)

    return Server("gate", version="1", on_list_tools=list_tools, on_call_tool=call_tool,
                  get_tool_input_schema=input_schema)


def input_schema(name: str) -> dict[str, Any] | None:
    """The requesting trial's schema of tool ``name``. The mcp SDK asks for it on every tool
    call (to check ``Mcp-Param-*`` headers); without this lookup it runs a whole ``tools/list``
    exchange per call to find it."""
    session = REQUESTING.get()
    if session is None:
        return None
    return next((t["function"]["parameters"] for t in session.spec.tools
                 if t["function"]["name"] == name), None)


def trial_tools(session: TrialSession) -> list[types.Tool]:
    return [
        types.Tool(name=t["function"]["name"], description=t["function"]["description"],
                   input_schema=t["function"]["parameters"])
        for t in session.spec.tools
    ]


def _session(ctx: ServerRequestContext[Any]) -> TrialSession:
    scope = getattr(ctx.request, "scope", None) or {}
    session = scope.get(SCOPE_KEY)
    if not isinstance(session, TrialSession):  # gate.agent.serve routes only known trials here
        raise RuntimeError("no trial for this MCP request")
    return session


def run_tool(session: TrialSession, name: str, arguments: Any) -> types.CallToolResult:
    """Execute one MCP tool call against the trial (an environment exception ends the trial)."""
    if session.end_reason is not None:
        return _result({"error": "this trial has ended"}, True)
    session.mcp_calls += 1
    call = {"id": f"mcp_{session.mcp_calls}",
            "function": {"name": name, "arguments": {} if arguments is None else arguments}}
    try:
        message = execute_call(session.spec, session.env, call, session.trace, session.seen)
    except Exception as exc:  # environment code failed: the harness's fault, not the agent's
        session.end(exc)
        return _result({"error": "the environment failed; the trial is over"}, True)
    payload = json.loads(message["content"])
    return _result(payload, "error" in payload)


def _result(payload: dict[str, Any], is_error: bool) -> types.CallToolResult:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=is_error)
