"""A provider that declares chat-completions fields unsupported (gate.yaml
``unsupported_fields.chat_completions``) gets none of them from gate's own requests: the built-in
loop's calls and the recording endpoint's reach a loopback provider that refuses each such field
as OpenAI refuses an unsupported parameter, and the trial is solved. A call without the trial's
seed is counted (``unseeded_calls``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest
from aiohttp import web
from endpoint_support import project, session
from provider_support import MODEL, config, loopback_app, provider

from gate.agent.endpoint import TrialSession
from gate.agent.loop import TrialSpec, TrialTrace, run_trial
from gate.agent.serve import serve_trial
from gate.config.schema import UnsupportedFields
from gate.providers.base import Attempt, ChatRequest
from gate.providers.factory import build_client
from gate.simulate.models import MockProvider

pytestmark = pytest.mark.slow  # loads the project, whole trials over loopback: not in the fast loop

TASK = "incident-easy-01-cache-crashed"


class StrictProvider:
    """Chat completions on 127.0.0.1 that refuse a request naming a parameter in
    ``unsupported`` with OpenAI's 400 (``unsupported_parameter``); the simulated expert answers
    every other request. Every body received is kept."""

    def __init__(self, unsupported: list[str]) -> None:
        self.unsupported = set(unsupported)
        self.bodies: list[dict[str, Any]] = []
        self.refused = 0
        self.expert = MockProvider(project())
        self.base_url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        bad = next((k for k in body if k in self.unsupported), None)
        if bad is not None:
            self.refused += 1
            return web.json_response({"error": {
                "message": f"Unsupported parameter: '{bad}' is not supported with this model.",
                "type": "invalid_request_error", "param": bad,
                "code": "unsupported_parameter"}}, status=400)
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        chat = ChatRequest(body["model"], body["messages"], body.get("tools") or [],
                           int(body.get("seed", 0)), int(limit),
                           tool_choice=body.get("tool_choice") or "auto")
        message = self.expert.respond(chat)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        return web.json_response({
            "id": f"gen-{len(self.bodies)}", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20}})

    @asynccontextmanager
    async def running(self) -> AsyncIterator[StrictProvider]:
        async with loopback_app("/v1/chat/completions", self.handle) as base_url:
            self.base_url = base_url
            yield self


def declaring(base_url: str, unsupported: list[str]) -> Any:
    return config(base_url).model_copy(update={
        "unsupported_fields": UnsupportedFields(chat_completions=unsupported)})


def loop_trial(server: StrictProvider) -> tuple[TrialTrace, bool, list[Attempt], TrialSpec]:
    p = project()
    lt = p.task(TASK)
    env_name = lt.task.environment
    spec = TrialSpec(task=lt, model=MODEL, seed=7, system_prompt=p.prompts[env_name],
                     tools=p.openai_tools(env_name), schemas=p.tool_schemas(env_name),
                     max_tokens=512, temperature=0.0)
    env = p.environment(env_name).cls(lt.fixture, 7)
    attempts: list[Attempt] = []

    async def go() -> TrialTrace:
        async with server.running():
            cfg = declaring(server.base_url, sorted(server.unsupported))
            async with build_client(cfg) as client:
                return await run_trial(spec, env, provider(cfg, client), attempts.append)

    trace = asyncio.run(go())
    return trace, env.outcome().success, attempts, spec


@pytest.mark.parametrize("unsupported", [
    ["seed"],
    ["seed", "temperature", "max_tokens", "tool_choice", "usage"],
])
def test_the_built_in_loop_leaves_out_what_the_provider_declares_and_solves_the_task(
    unsupported: list[str],
) -> None:
    server = StrictProvider(unsupported)
    trace, success, attempts, spec = loop_trial(server)
    assert server.refused == 0  # no call was refused for a field gate sent on its own
    assert (trace.ended, success) == ("final_answer", True)
    assert [a.outcome for a in attempts] == ["ok"] * trace.steps
    assert len(server.bodies) == trace.steps > 1
    for body in server.bodies:
        assert not set(unsupported) & set(body)
        assert body["tools"] == spec.tools  # what the loop cannot do without is sent
    limit = "max_completion_tokens" if "max_tokens" in unsupported else "max_tokens"
    assert {b[limit] for b in server.bodies} == {spec.max_tokens}  # the budget's cap, renamed
    if unsupported == ["seed"]:
        assert {b["temperature"] for b in server.bodies} == {0.0}  # the rest is as before


def test_the_endpoint_leaves_the_seed_out_and_counts_the_unseeded_calls() -> None:
    server = StrictProvider(["seed"])

    async def go() -> TrialSession:
        async with server.running():
            cfg = declaring(server.base_url, ["seed"])
            async with build_client(cfg) as client:
                s, _ = session(TASK, model=MODEL, provider=provider(cfg, client))
                async with serve_trial(s) as served, openai.AsyncOpenAI(
                        base_url=served.base_url, api_key="trial-token", max_retries=0) as llm:
                    messages: list[Any] = [
                        {"role": "user", "content": s.spec.task.task.instruction}]
                    for _ in range(2):
                        answer = await llm.chat.completions.create(
                            model="mock--expert", messages=messages, tools=s.spec.tools)
                        messages.append(answer.choices[0].message.model_dump(exclude_none=True))
                        for call in answer.choices[0].message.tool_calls or []:
                            messages.append({"role": "tool", "tool_call_id": call.id,
                                             "content": "{}"})
                return s

    s = asyncio.run(go())
    assert server.refused == 0
    assert len(server.bodies) == 2
    assert all("seed" not in b for b in server.bodies)
    assert s.unseeded_calls == 2
    assert s.model_calls == 2
