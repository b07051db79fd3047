"""What the chat-completions endpoint forwards (what changes behaviour), what it records as
ignored or replaced, what it refuses as OpenAI would; and the simulated models meeting agent
frameworks' habits: an alias model id, a templated instruction, prefixed tools, structured
output, an output tool under ``tool_choice: required``, seeded parallel reads."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import httpx
import openai
import pydantic
import pytest
from endpoint_support import StubProvider, instruction, mcp_tools, project, run_tool, session
from mcp import Client

from gate.agent.endpoint import TrialSession
from gate.agent.serve import serve_trial

TASK = "incident-easy-01-cache-crashed"
AUTH = {"Authorization": "Bearer trial-token"}


class Verdict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    summary: str
    services: list[str]
    fixed: bool


def test_behaviour_fields_are_forwarded_and_others_recorded() -> None:
    async def go() -> TrialSession:
        stub = StubProvider()
        s, _ = session(TASK, provider=stub)
        async with serve_trial(s) as served, openai.AsyncOpenAI(
                base_url=served.base_url, api_key="trial-token", max_retries=0) as llm:
            await llm.chat.completions.create(
                model="mock--expert", messages=[{"role": "user", "content": "hi"}],
                tools=s.spec.tools, tool_choice="required", parallel_tool_calls=True,
                stop=["END"], seed=42, top_p=0.9, reasoning_effort="high",
                response_format={"type": "json_object"}, user="u1", metadata={"a": "b"},
                store=False, n=1)
        (request,) = stub.requests
        assert request.tool_choice == "required"
        assert request.seed == 7  # the trial's, for the paired design
        assert request.options == {"parallel_tool_calls": True, "stop": ["END"], "top_p": 0.9,
                                   "reasoning_effort": "high",
                                   "response_format": {"type": "json_object"}}
        body = request.body()
        assert body["reasoning_effort"] == "high"
        assert body["tool_choice"] == "required"
        return s

    s = asyncio.run(go())
    assert s.ignored_fields == {"user", "metadata", "store"}
    assert s.replaced_fields == {"seed"}
    assert s.unseeded_calls == 0  # the trial's seed went with the call


@pytest.mark.parametrize(("extra", "word"), [
    ({"n": 2}, "n=2"),
    ({"logprobs": True}, "logprobs"),
    ({"web_search_options": {}}, "Unrecognized request argument supplied: web_search_options"),
    ({"tool_choice": {"type": "function", "function": {"name": "rm_rf"}}}, "rm_rf"),
    ({"response_format": {"type": "json_schema"}}, "json_schema"),
    ({"response_format": {"type": "yaml"}}, "response_format"),
])
def test_what_cannot_be_passed_on_is_refused_not_dropped(extra: dict[str, Any],
                                                          word: str) -> None:
    async def go() -> tuple[httpx.Response, StubProvider, TrialSession]:
        stub = StubProvider()
        s, _ = session(TASK, provider=stub)
        async with serve_trial(s) as served, httpx.AsyncClient() as http:
            r = await http.post(served.base_url + "/chat/completions", headers=AUTH, json={
                "model": "mock/expert", "messages": [{"role": "user", "content": "x"}],
                "tools": s.spec.tools, **extra})
        return r, stub, s

    response, stub, s = asyncio.run(go())
    assert response.status_code == 400
    assert word in response.json()["error"]["message"]
    assert stub.requests == []
    assert s.rejected == {"unsupported": 1}


async def _chat_loop(s: TrialSession, llm: openai.AsyncOpenAI, mcp: Client, *, prefix: str = "",
                     template: str = "{}", **kwargs: Any) -> list[Any]:
    """A minimal chat-completions agent; returns every assistant message."""
    tools = await mcp_tools(mcp, prefix)
    messages: list[Any] = [{"role": "system", "content": s.spec.system_prompt},
                           {"role": "user", "content": template.format(instruction(s))}]
    said = []
    for _ in range(20):
        r = await llm.chat.completions.create(model="mock--expert", messages=messages,
                                              tools=tools, **kwargs)
        message = r.choices[0].message
        said.append(message)
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            break
        for tc in message.tool_calls:
            out = await run_tool(mcp, tc.function.name, tc.function.arguments, prefix)
            messages.append({"role": "tool", "tool_call_id": tc.id, "content": out})
    return said


def _served(task: str, seed: int = 7, **kwargs: Any) -> tuple[TrialSession, Any, list[Any]]:
    async def go() -> tuple[TrialSession, Any, list[Any]]:
        s, audit = session(task, seed=seed)
        async with serve_trial(s) as served, Client(served.mcp_url) as mcp, openai.AsyncOpenAI(
                base_url=served.base_url, api_key="trial-token", max_retries=0) as llm:
            said = await _chat_loop(s, llm, mcp, **kwargs)
        return s, audit, said

    return asyncio.run(go())


def test_templated_instruction_and_prefixed_tools_still_solve_the_task() -> None:
    s, audit, said = _served(TASK, prefix="gate_",
                             template="Customer request (via web form):\n{}\n-- sent from web")
    assert s.env.outcome().success
    names = {tc.function.name for m in said for tc in m.tool_calls or []}
    assert names
    assert all(n.startswith("gate_") for n in names)
    assert s.trace.invalid == {}
    assert len(audit) == len(said)


def test_structured_output_is_schema_valid() -> None:
    s, _, said = _served(TASK, response_format={"type": "json_schema", "json_schema": {
        "name": "verdict", "strict": True, "schema": Verdict.model_json_schema()}})
    assert s.env.outcome().success
    verdict = Verdict.model_validate_json(said[-1].content)
    assert verdict.summary == s.spec.task.fixture.reference_output


def test_output_tool_is_called_when_offered_and_the_work_is_done() -> None:
    async def go() -> tuple[TrialSession, Any]:
        s, _ = session(TASK)
        async with serve_trial(s) as served, Client(served.mcp_url) as mcp, openai.AsyncOpenAI(
                base_url=served.base_url, api_key="trial-token", max_retries=0) as llm:
            tools = [*await mcp_tools(mcp), {"type": "function", "function": {
                "name": "final_result", "parameters": Verdict.model_json_schema()}}]
            messages: list[Any] = [{"role": "user", "content": instruction(s)}]
            for _ in range(20):
                r = await llm.chat.completions.create(model="mock/expert", messages=messages,
                                                      tools=tools, tool_choice="required")
                message = r.choices[0].message
                messages.append(message.model_dump(exclude_none=True))
                assert message.tool_calls  # required: always a call
                (tc, *more) = message.tool_calls
                if tc.function.name == "final_result":
                    return s, json.loads(tc.function.arguments)
                for call in [tc, *more]:
                    messages.append({"role": "tool", "tool_call_id": call.id, "content":
                                     await run_tool(mcp, call.function.name,
                                                    call.function.arguments)})
        raise AssertionError("final_result never called")

    s, arguments = asyncio.run(go())
    assert s.env.outcome().success
    assert Verdict.model_validate(arguments).fixed is True


def _parallel_task() -> str:
    """A task whose reference trajectory has two required-evidence reads in a row."""
    for lt in project().tasks:
        ref, ev = lt.fixture.reference_trajectory, lt.fixture.required_evidence
        reads = [any(e.tool == c.tool and all(c.args.get(k) == v for k, v in e.args.items())
                     for e in ev) for c in ref]
        if any(a and b for a, b in itertools.pairwise(reads)):
            return lt.task.id
    raise AssertionError("no task with consecutive reads")


@pytest.mark.slow  # end to end: not in the fast loop
def test_parallel_reads_when_asked_seeded_and_still_solved() -> None:
    task = _parallel_task()
    widths = {}
    for seed in range(1, 9):
        s, audit, said = _served(task, seed=seed, parallel_tool_calls=True)
        assert s.env.outcome().success
        assert s.mcp_calls == sum(len(m.tool_calls or []) for m in said)
        assert len(audit) == len(said)
        widths[seed] = max(len(m.tool_calls or []) for m in said)
    assert max(widths.values()) >= 2
    again = _served(task, seed=max(widths, key=widths.__getitem__), parallel_tool_calls=True)[2]
    assert max(len(m.tool_calls or []) for m in again) == max(widths.values())  # seeded
    _, _, sequential = _served(task, seed=1)
    assert max(len(m.tool_calls or []) for m in sequential) == 1  # not asked: one at a time
