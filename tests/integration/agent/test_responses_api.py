"""``POST /v1/responses`` at the recording endpoint, driven by the official `openai` SDK's
``client.responses`` as a program would: function tools run through the trial's MCP server,
``previous_response_id`` chaining, streaming, ``text.format`` structured output; every call
priced and audited with the provider's response id, the task solved on the simulated expert."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import openai
import pydantic
import pytest
from endpoint_support import StubProvider, instruction, mcp_tools, run_tool, session
from mcp import Client

from gate.agent.serve import serve_trial

TASK = "incident-easy-01-cache-crashed"


class Verdict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    summary: str
    root_cause: str
    fixed: bool


def _responses_tools(chat_tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "function", "name": t["function"]["name"],
             "description": t["function"]["description"],
             "parameters": t["function"]["parameters"], "strict": False} for t in chat_tools]


async def _solve(stream: bool) -> dict[str, Any]:
    s, audit = session(TASK)
    ids: list[str] = []
    async with serve_trial(s) as served, Client(served.mcp_url) as mcp, openai.AsyncOpenAI(
            base_url=served.base_url, api_key="trial-token", max_retries=0) as llm:
        tools = _responses_tools(await mcp_tools(mcp))
        previous: str | None = None
        items: list[Any] = [{"role": "user", "content": [
            {"type": "input_text", "text": "Ticket from the web form:\n" + instruction(s)}]}]
        for _ in range(20):
            kwargs: dict[str, Any] = {"model": "mock--expert", "instructions": s.spec.system_prompt,
                                      "input": items, "tools": tools}
            if previous:
                kwargs["previous_response_id"] = previous
            if stream:
                async with llm.responses.stream(**kwargs) as events:
                    kinds = [e.type async for e in events]
                    response = await events.get_final_response()
                assert kinds[0] == "response.created"
                assert kinds[-1] == "response.completed"
            else:
                response = await llm.responses.create(**kwargs)
            ids.append(response.id)
            previous = response.id
            calls = [o for o in response.output if o.type == "function_call"]
            if not calls:
                break
            items = [{"type": "function_call_output", "call_id": c.call_id,
                      "output": await run_tool(mcp, c.name, c.arguments)} for c in calls]
        final = await llm.responses.parse(
            model="mock--expert", previous_response_id=previous,
            input="Now the verdict as JSON.", text_format=Verdict)
        ids.append(final.id)
    return {"session": s, "audit": audit, "ids": ids, "final": final}


def _check_solved(out: dict[str, Any]) -> None:
    s, audit, ids = out["session"], out["audit"], out["ids"]
    assert s.env.outcome().success
    assert [a.response_id for _, a in audit] == ids  # one audit line per call, the same ids
    assert [step for step, _ in audit] == list(range(1, len(ids) + 1))
    assert s.trace.response_ids == ids
    assert s.trace.cost_usd > 0
    parsed = out["final"].output_parsed
    assert isinstance(parsed, Verdict)
    assert parsed.summary == s.spec.task.fixture.reference_output


@pytest.mark.slow  # end to end: not in the fast loop
def test_responses_solve_the_task_with_previous_response_id() -> None:
    _check_solved(asyncio.run(_solve(stream=False)))


@pytest.mark.slow  # end to end: not in the fast loop
def test_streamed_responses_solve_the_task_too() -> None:
    _check_solved(asyncio.run(_solve(stream=True)))


def test_instructions_are_not_carried_over_and_unknown_previous_ids_are_refused() -> None:
    async def go() -> None:
        s, audit = session(TASK)
        async with serve_trial(s) as served, httpx.AsyncClient() as http:
            url, auth = served.base_url + "/responses", {"Authorization": "Bearer trial-token"}
            first = await http.post(url, headers=auth, json={
                "model": "mock/expert", "instructions": "SYSTEM", "input": instruction(s)})
            assert first.status_code == 200
            rid = first.json()["id"]
            assert s.conversations[rid][0] == {"role": "user", "content": instruction(s)}
            bad = await http.post(url, headers=auth, json={
                "model": "mock/expert", "previous_response_id": "resp_elsewhere", "input": "x"})
            hosted = await http.post(url, headers=auth, json={
                "model": "mock/expert", "input": "x", "tools": [{"type": "web_search"}]})
            unknown = await http.post(url, headers=auth, json={
                "model": "mock/expert", "input": "x", "conversation": "conv_1"})
        assert [r.status_code for r in (bad, hosted, unknown)] == [400, 400, 400]
        assert "web_search" in hosted.json()["error"]["message"]
        assert len(audit) == 1  # refused requests never reach the provider
        assert s.rejected == {"unsupported": 3}

    asyncio.run(go())


def test_tool_choice_and_structured_format_reach_the_provider_translated() -> None:

    async def go() -> None:
        stub = StubProvider()
        s, _ = session(TASK, provider=stub)
        async with serve_trial(s) as served, openai.AsyncOpenAI(
                base_url=served.base_url, api_key="trial-token", max_retries=0) as llm:
            await llm.responses.create(
                model="mock/expert", input="hi", tool_choice={"type": "function",
                                                              "name": "check_status"},
                tools=_responses_tools(s.spec.tools), parallel_tool_calls=False,
                reasoning={"effort": "low"}, max_output_tokens=100, top_p=0.5,
                text={"format": {"type": "json_schema", "name": "v", "strict": True,
                                 "schema": Verdict.model_json_schema()}}, store=False)
        (request,) = stub.requests
        assert request.tool_choice == {"type": "function", "function": {"name": "check_status"}}
        assert request.max_tokens == 100
        assert request.options == {
            "parallel_tool_calls": False, "reasoning_effort": "low", "top_p": 0.5,
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "v", "strict": True, "schema": Verdict.model_json_schema()}}}
        assert json.loads(json.dumps(request.body()))["tool_choice"]["function"]["name"] == \
            "check_status"
        assert s.ignored_fields == {"store"}

    asyncio.run(go())
