"""`gate mock-server` passes for a real provider: the official ``openai`` SDK is the client.

Streaming (SSE chunks, usage in the last chunk, tool calls as deltas), ``tool_choice``, the
model objects of ``/v1/models`` and ``/v1/models/{id}``, and an instruction given as text parts.
Gate's own SSE reader (``gate.providers.sse``) is checked against the same stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gate.config.schema import FaultConfig
from gate.project.load import Project, load_project
from gate.providers import sse
from gate.providers.base import ErrorKind
from gate.providers.classify import classify
from gate.simulate.models import MOCK_PRICES, MockProvider
from gate.simulate.server import MockServer

MODEL = "mock/expert"


@pytest.fixture
def project(project_dir: Path) -> Project:
    return load_project(project_dir / "gate.yaml")


@pytest.fixture
def server(project: Project) -> Iterator[MockServer]:
    with MockServer(MockProvider(project), MOCK_PRICES, seed=5) as srv:
        yield srv


def _client(srv: MockServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="sk-none", max_retries=0)


def _ask(project: Project, *, parts: bool = False) -> dict[str, Any]:
    lt = project.tasks[0]
    env = lt.task.environment
    instruction = lt.task.instruction
    content: Any = [{"type": "text", "text": instruction}] if parts else instruction
    return {"model": MODEL, "seed": 3, "tools": project.openai_tools(env),
            "messages": [{"role": "system", "content": project.prompts[env]},
                         {"role": "user", "content": content}]}


def _first_reference(project: Project) -> tuple[str, dict[str, Any]]:
    ref = project.tasks[0].fixture.reference_trajectory[0]
    return ref.tool, dict(ref.args)


def test_the_sdk_reads_a_completion_and_text_parts_are_the_task(
    server: MockServer, project: Project
) -> None:
    for parts in (False, True):
        done = _client(server).chat.completions.create(**_ask(project, parts=parts))
        call = done.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert (call.function.name, json.loads(call.function.arguments)) == \
            _first_reference(project)
        assert done.choices[0].finish_reason == "tool_calls"


def test_a_stream_ends_with_usage_and_tool_calls_come_as_deltas(
    server: MockServer, project: Project
) -> None:
    client = _client(server)
    plain = client.chat.completions.create(**_ask(project))
    chunks = list(client.chat.completions.create(
        **_ask(project), stream=True, stream_options={"include_usage": True}))
    assert len(chunks) > 4
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens  # type: ignore[union-attr]
    assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] == "tool_calls"
    deltas = [tc for c in chunks[:-1] for tc in c.choices[0].delta.tool_calls or []]
    pieces = [tc.function.arguments for tc in deltas if tc.function and tc.function.arguments]
    assert len(pieces) > 1  # really streamed in pieces
    with client.chat.completions.stream(**_ask(project)) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    expected = plain.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert streamed.function.name == expected.function.name
    assert streamed.function.arguments == expected.function.arguments
    assert streamed.id == expected.id


def test_without_include_usage_no_chunk_carries_usage(
    server: MockServer, project: Project
) -> None:
    chunks = list(_client(server).chat.completions.create(**_ask(project), stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_choice_none_required_and_named(server: MockServer, project: Project) -> None:
    client = _client(server)
    none = client.chat.completions.create(**_ask(project), tool_choice="none")
    assert not none.choices[0].message.tool_calls
    assert none.choices[0].message.content == project.tasks[0].fixture.reference_output
    # a conversation the expert would end with a final answer: "required" still calls a tool
    ask = _ask(project)
    for i, ref in enumerate(project.tasks[0].fixture.reference_trajectory):
        call = {"id": f"c{i}", "type": "function",
                "function": {"name": ref.tool, "arguments": json.dumps(ref.args)}}
        ask["messages"] += [{"role": "assistant", "content": None, "tool_calls": [call]},
                            {"role": "tool", "tool_call_id": f"c{i}", "content": "{}"}]
    free = client.chat.completions.create(**ask)
    required = client.chat.completions.create(**ask, tool_choice="required")
    assert not free.choices[0].message.tool_calls
    assert required.choices[0].message.tool_calls
    tools = {t["function"]["name"] for t in _ask(project)["tools"]}
    other = sorted(tools - {_first_reference(project)[0]})[0]
    named = client.chat.completions.create(
        **_ask(project), tool_choice={"type": "function", "function": {"name": other}})
    assert [c.function.name for c in named.choices[0].message.tool_calls or []] == [other]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            **_ask(project), tool_choice={"type": "function", "function": {"name": "nope"}})


def test_models_are_openai_model_objects_with_prices(server: MockServer) -> None:
    client = _client(server)
    models = list(client.models.list())
    assert {m.id for m in models} == set(MOCK_PRICES)
    for m in models:
        assert m.object == "model"
        assert m.owned_by == "gate-mock"
        assert m.created > 0
        assert float(m.model_extra["pricing"]["prompt"]) == MOCK_PRICES[m.id].prompt  # type: ignore[index]
    one = client.models.retrieve(MODEL)
    assert one.id == MODEL
    assert one.object == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("mock/absent")


def _stream_with_httpx(srv: MockServer, body: dict[str, Any]) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with httpx.AsyncClient() as client, client.stream(
                "POST", f"{srv.base_url}/chat/completions", json=body) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            return await sse.read_stream(response.aiter_lines())

    return asyncio.run(go())


def test_gates_sse_reader_assembles_what_the_server_streams(
    server: MockServer, project: Project
) -> None:
    plain = _client(server).chat.completions.create(**_ask(project)).model_dump()
    body = _stream_with_httpx(server, {**_ask(project), "stream": True,
                                       "stream_options": {"include_usage": True}})
    assert classify(200, body) is None
    message = body["choices"][0]["message"]
    assert message["tool_calls"] == [
        {k: v for k, v in tc.items() if v is not None}
        for tc in plain["choices"][0]["message"]["tool_calls"]]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    response = sse.to_chat_response(body, cost_usd=0.0, latency_s=0.0)
    assert response.usage.prompt_tokens == plain["usage"]["prompt_tokens"]
    assert response.finish_reason == "tool_calls"
    assert response.response_id.startswith("gen-")


def test_an_error_event_in_a_stream_is_a_provider_error(project: Project) -> None:
    faults = FaultConfig(rate=1.0, kinds=["error_in_body"])
    with MockServer(MockProvider(project), MOCK_PRICES, faults, seed=5) as srv:
        body = _stream_with_httpx(srv, {**_ask(project), "stream": True})
    assert classify(200, body) is ErrorKind.ERROR_IN_BODY


def test_assemble_keeps_refusal_reasoning_and_comments_are_skipped() -> None:
    done = {"id": "gen-1", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "length", "message": {
                "role": "assistant", "content": "a" * 40, "refusal": "no " * 10,
                "reasoning": "think " * 9,
                "reasoning_details": [{"type": "reasoning.text", "text": "t"}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    stream = sse.encode(sse.chunks_of(done, include_usage=True)).decode()
    lines = [": OPENROUTER PROCESSING", "", *stream.splitlines()]
    body = sse.assemble(sse.parse_events(lines))
    assert body["choices"][0]["message"] == {**done["choices"][0]["message"]}  # type: ignore[index]
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == done["usage"]
    with pytest.raises(sse.StreamError):
        list(sse.parse_events(["data: {not json"]))
