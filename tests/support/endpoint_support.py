"""A trial's endpoint in-process with a given provider (the simulated models by default), and a
tiny agent loop over the official `openai` SDK and `mcp` client, as a program would write it."""

from __future__ import annotations

import json
from typing import Any

from agent_support import REPO
from mcp import Client

from gate.agent.endpoint import TrialSession
from gate.agent.loop import TrialSpec
from gate.project.load import Project, load_project
from gate.providers.base import (
    Attempt,
    AttemptSink,
    ChatRequest,
    ChatResponse,
    Provider,
    Usage,
)
from gate.simulate.models import MockProvider

_PROJECT: list[Project] = []


def project() -> Project:
    if not _PROJECT:
        _PROJECT.append(load_project(REPO / "gate.yaml"))
    return _PROJECT[0]


def session(task: str, *, model: str = "mock/expert", provider: Provider | None = None,
            seed: int = 7) -> tuple[TrialSession, list[tuple[int, Attempt]]]:
    p = project()
    lt = p.task(task)
    env_name = lt.task.environment
    spec = TrialSpec(task=lt, model=model, seed=seed, system_prompt=p.prompts[env_name],
                     tools=p.openai_tools(env_name), schemas=p.tool_schemas(env_name),
                     max_tokens=1024, temperature=0.0)
    env = p.environment(env_name).cls(lt.fixture, seed)
    audit: list[tuple[int, Attempt]] = []
    s = TrialSession(spec, env, provider or MockProvider(p), lambda step, a: audit.append(
        (step, a)), token="trial-token")
    return s, audit


async def mcp_tools(mcp: Client, prefix: str = "") -> list[dict[str, Any]]:
    """The trial's tools as chat-completions function tools, renamed ``prefix + name``."""
    listed = await mcp.list_tools()
    return [{"type": "function", "function": {"name": prefix + t.name, "description":
             t.description or "", "parameters": t.input_schema}} for t in listed.tools]


async def run_tool(mcp: Client, name: str, arguments: str, prefix: str = "") -> str:
    result = await mcp.call_tool(name.removeprefix(prefix), json.loads(arguments))
    return "".join(getattr(c, "text", "") for c in result.content)


def instruction(s: TrialSession) -> str:
    return s.spec.task.task.instruction


class StubProvider:
    """Answers every request with one tool call, then a text; reports one attempt each."""

    name = "stub"

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest, on_attempt: AttemptSink) -> ChatResponse:
        self.requests.append(request)
        n = len(self.requests)
        on_attempt(Attempt(1, "ok", request.sha256(), 200, f"resp-{n}", 10, 5))
        if n == 1:
            message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function", "function": {
                    "name": "check_status", "arguments": '{"service": "cache"}'}}]}
        else:
            message = {"role": "assistant", "content": "All good. " * 20}
        return ChatResponse(f"resp-{n}", message, Usage(10, 5), 0.001, 0.0)

    async def aclose(self) -> None:
        return None
