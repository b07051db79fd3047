"""The recording endpoint and the MCP tool server in-process, with the official `openai` SDK and
`mcp` client as the program would use them: streamed answers reassemble to the provider's
response, usage arrives in the last chunk, tokens and models are checked, the tools are the
arm's, and nothing listens after the trial."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import httpx
import openai
import pytest
from agent_support import REPO, port_open
from endpoint_support import StubProvider
from mcp import Client

from gate.agent.endpoint import TrialSession
from gate.agent.loop import TrialSpec
from gate.agent.serve import TrialServer, serve_trial
from gate.project.load import load_project
from gate.providers.base import Attempt

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it

TASK = "incident-easy-01-cache-crashed"




def _session(provider: StubProvider, audit: list[tuple[int, Attempt]]) -> TrialSession:
    project = load_project(REPO / "gate.yaml")
    lt = project.task(TASK)
    env_name = lt.task.environment
    spec = TrialSpec(task=lt, model="vendor/model-1", seed=7,
                     system_prompt=project.prompts[env_name],
                     tools=project.openai_tools(env_name),
                     schemas=project.tool_schemas(env_name), max_tokens=256, temperature=0.0)
    env = project.environment(env_name).cls(lt.fixture, 7)
    return TrialSession(spec, env, provider, lambda step, a: audit.append((step, a)),
                        token="trial-token")


def test_streamed_and_plain_answers_with_the_official_sdk() -> None:
    async def go() -> None:
        provider, audit = StubProvider(), []
        session = _session(provider, audit)
        async with serve_trial(session) as served, openai.AsyncOpenAI(
                base_url=served.base_url, api_key="trial-token", max_retries=0) as llm:
            stream = await llm.chat.completions.create(
                model="vendor/model-1", messages=[{"role": "user", "content": "hi"}],
                stream=True, stream_options={"include_usage": True}, max_tokens=10_000)
            chunks = [c async for c in stream]
            assert {c.id for c in chunks} == {"resp-1"}
            calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
            assert calls[0].function is not None
            assert calls[0].function.name == "check_status"
            assert "".join(tc.function.arguments or "" for tc in calls if tc.function) == \
                '{"service": "cache"}'
            assert chunks[-2].choices[0].finish_reason == "tool_calls"
            assert chunks[-1].choices == []
            assert chunks[-1].usage is not None
            assert chunks[-1].usage.total_tokens == 15
            plain = await llm.chat.completions.create(
                model="vendor/model-1", messages=[{"role": "user", "content": "again"}],
                temperature=None)
            assert plain.id == "resp-2"
            assert plain.choices[0].message.content == "All good. " * 20
            assert plain.choices[0].finish_reason == "stop"
        assert not port_open(served.port)
        assert [step for step, _ in audit] == [1, 2]
        assert provider.requests[0].max_tokens == 256  # capped at run.max_tokens
        assert provider.requests[0].seed == 7  # the trial's seed
        assert session.trace.response_ids == ["resp-1", "resp-2"]

    asyncio.run(go())


def test_other_tokens_and_models_are_refused_before_the_provider() -> None:
    async def go() -> None:
        provider, audit = StubProvider(), []
        session = _session(provider, audit)
        async with serve_trial(session) as served, httpx.AsyncClient() as http:
            url = served.base_url + "/chat/completions"
            body = {"model": "vendor/model-1", "messages": [{"role": "user", "content": "x"}]}
            no_key = await http.post(url, json=body)
            wrong = await http.post(url, json=body, headers={"Authorization": "Bearer x"})
            other = await http.post(url, json={**body, "model": "vendor/model-2"},
                                    headers={"Authorization": "Bearer trial-token"})
            garbage = await http.post(url, content=b"{not json",
                                      headers={"Authorization": "Bearer trial-token"})
            strings = await http.post(url, json={**body, "messages": ["hi"]},
                                      headers={"Authorization": "Bearer trial-token"})
        assert [r.status_code for r in (no_key, wrong, other, garbage, strings)] == [
            401, 401, 404, 400, 400]
        assert provider.requests == []
        assert audit == []
        assert session.rejected == {"auth": 2, "model": 1, "bad_request": 2}

    asyncio.run(go())


def test_mcp_serves_exactly_the_arms_tools_and_checks_calls_like_the_loop() -> None:
    async def go() -> None:
        provider, audit = StubProvider(), []
        session = _session(provider, audit)
        async with serve_trial(session) as served, Client(served.mcp_url) as mcp:
            listed = await mcp.list_tools()
            ok = await mcp.call_tool("check_status", {"service": "cache"})
            unknown = await mcp.call_tool("rm_rf", {})
            invalid = await mcp.call_tool("check_status", {"service": 3})
            again = await mcp.call_tool("check_status", {"service": "cache"})
        assert sorted((t.name, t.input_schema == t_def["function"]["parameters"])
                      for t, t_def in zip(sorted(listed.tools, key=lambda t: t.name),
                                          sorted(session.spec.tools,
                                                 key=lambda t: t["function"]["name"]),
                                          strict=True)) == sorted(
            (t["function"]["name"], True) for t in session.spec.tools)
        assert not ok.is_error
        assert unknown.is_error
        assert invalid.is_error
        assert not again.is_error
        trace = session.trace
        assert trace.tool_calls == 4
        assert trace.valid_calls == 2
        assert dict(trace.invalid) == {"unknown_tool": 1, "schema": 1}
        assert trace.repeated_calls == 1
        assert trace.evidence_seen  # check_status(cache) is required evidence of this task
        assert not port_open(served.port)

    asyncio.run(go())


@pytest.mark.parametrize("path", ["/mcp", "/mcp/guess"])
def test_the_mcp_path_is_the_trials_secret(path: str) -> None:
    async def go() -> int:
        session = _session(StubProvider(), [])
        async with serve_trial(session) as served, httpx.AsyncClient() as http:
            response = await http.post(f"http://127.0.0.1:{served.port}{path}", json={})
            return response.status_code

    assert asyncio.run(go()) == 404


def test_environment_failure_during_a_tool_call_ends_the_trial() -> None:
    async def go() -> TrialSession:
        session = _session(StubProvider(), [])

        def broken(tool: str, args: dict[str, Any]) -> Any:
            raise RuntimeError("environment bug")

        session.env.call = broken  # type: ignore[method-assign]
        async with serve_trial(session) as served, Client(served.mcp_url) as mcp:
            result = await mcp.call_tool("check_status", {"service": "cache"})
            assert result.is_error
        return session

    session = asyncio.run(go())
    assert isinstance(session.end_reason, RuntimeError)
    assert session.ended.is_set()


def test_a_run_does_not_import_the_server_stack_until_a_program_runs() -> None:
    code = ("import sys, gate.engine.runner; print(sorted({'uvicorn', 'mcp', 'starlette'}"
            " & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_one_server_keeps_concurrent_trials_apart_and_forgets_an_ended_one() -> None:
    """The run's server serves many trials at once: each path reaches its own trial only (its
    token, its provider, its tools, its accounting), and an ended trial's paths answer 404."""
    async def go() -> None:
        server = TrialServer()
        await server.start()
        audit_a: list[tuple[int, Attempt]] = []
        audit_b: list[tuple[int, Attempt]] = []
        a, b = _session(StubProvider(), audit_a), _session(StubProvider(), audit_b)
        b.token = "other-token"
        body = {"model": "vendor/model-1", "messages": [{"role": "user", "content": "x"}]}
        try:
            async with server.trial(a) as at_a, server.trial(b) as at_b, \
                    httpx.AsyncClient() as http:
                assert at_a.port == at_b.port
                own = await http.post(at_a.base_url + "/chat/completions", json=body,
                                      headers={"Authorization": "Bearer trial-token"})
                crossed = await http.post(at_b.base_url + "/chat/completions", json=body,
                                          headers={"Authorization": "Bearer trial-token"})
                async with Client(at_b.mcp_url) as mcp:
                    await mcp.call_tool("check_status", {"service": "cache"})
            async with httpx.AsyncClient() as http:
                late = await http.post(at_a.base_url + "/chat/completions", json=body,
                                       headers={"Authorization": "Bearer trial-token"})
                late_mcp = await http.post(at_b.mcp_url, json={})
            assert port_open(server.port)  # the server outlives its trials
        finally:
            await server.aclose()
        assert [own.status_code, crossed.status_code, late.status_code,
                late_mcp.status_code] == [200, 401, 404, 404]
        assert [step for step, _ in audit_a] == [1]
        assert audit_b == []
        assert (a.model_calls, a.mcp_calls, dict(a.rejected)) == (1, 0, {})
        assert (b.model_calls, b.mcp_calls, dict(b.rejected)) == (0, 1, {"auth": 1})
        assert b.trace.tool_calls == 1
        assert a.trace.tool_calls == 0
        assert not port_open(server.port)

    asyncio.run(go())


def test_the_server_sends_without_waiting_for_acks() -> None:
    """Nagle's algorithm is off on the server's connections: a response written in two parts
    (headers, then body) would otherwise wait for the client's delayed ACK, about 40 ms on
    Linux for each MCP tool call."""
    import socket

    async def go() -> list[int]:
        server = TrialServer()
        await server.start()
        session = _session(StubProvider(), [])
        try:
            async with server.trial(session) as served, httpx.AsyncClient() as http:
                await http.post(served.mcp_url, json={})  # the connection stays open
                assert server._server is not None
                conns = server._server.server_state.connections
                return [c.transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in conns]
        finally:
            await server.aclose()

    flags = asyncio.run(go())
    assert flags
    assert all(flags), flags


def test_a_tool_call_does_not_list_the_tools_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mcp SDK checks a call's ``Mcp-Param-*`` headers against the tool's schema: gate
    gives it the requesting trial's schema, rather than have it run ``tools/list`` per call."""
    import gate.agent.mcp_tools as mcp_tools

    listed: list[str] = []
    real = mcp_tools.trial_tools

    def counting(session: TrialSession) -> Any:
        listed.append(session.token)
        return real(session)

    monkeypatch.setattr(mcp_tools, "trial_tools", counting)

    async def go() -> int:
        session = _session(StubProvider(), [])
        async with serve_trial(session) as served, Client(served.mcp_url) as mcp:
            await mcp.list_tools()
            for service in ("cache", "db", "cache"):
                await mcp.call_tool("check_status", {"service": service})
        return session.mcp_calls

    assert asyncio.run(go()) == 3
    assert listed == ["trial-token"]


def test_the_schema_lookup_answers_for_the_requesting_trial_only() -> None:
    import dataclasses

    from gate.agent.mcp_tools import REQUESTING, input_schema

    a, b = _session(StubProvider(), []), _session(StubProvider(), [])
    b.spec = dataclasses.replace(b.spec, tools=[{"type": "function", "function": {
        "name": "check_status", "description": "", "parameters": {"type": "object",
                                                                  "title": "b's"}}}])
    assert input_schema("check_status") is None  # outside a request
    for session, title in ((a, None), (b, "b's")):
        token = REQUESTING.set(session)
        try:
            schema = input_schema("check_status")
            assert schema is not None
            assert schema.get("title") == title
            assert input_schema("no_such_tool") is None
        finally:
            REQUESTING.reset(token)


class _HeldProvider(StubProvider):
    """Holds each answer until ``release`` is set; ``asked`` is set once a request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.asked, self.release = asyncio.Event(), asyncio.Event()

    async def complete(self, request: Any, on_attempt: Any) -> Any:
        self.asked.set()
        await self.release.wait()
        return await super().complete(request, on_attempt)


def test_stopping_makes_no_fixed_pause_yet_lets_an_answer_finish(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A server is stopped at the end of every per-trial trial: with an idle keep-alive
    connection open it stops without sleeping (uvicorn's own shutdown pauses 0.1 s), and an
    answer still being written when it is told to stop is delivered before it stops."""
    pauses: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded_sleep(delay: float, *args: Any, **kwargs: Any) -> Any:
        if delay > 0:
            pauses.append(delay)
        return await real_sleep(delay, *args, **kwargs)

    body = {"model": "vendor/model-1", "messages": [{"role": "user", "content": "x"}]}
    auth = {"Authorization": "Bearer trial-token"}

    async def idle() -> None:
        server = TrialServer()
        await server.start()
        async with server.trial(_session(StubProvider(), [])) as served, \
                httpx.AsyncClient() as http:
            first = await http.post(served.base_url + "/chat/completions", json=body,
                                    headers=auth)
            assert first.status_code == 200  # its connection stays open, idle
            monkeypatch.setattr(asyncio, "sleep", recorded_sleep)
            try:
                await server.aclose()
            finally:
                monkeypatch.setattr(asyncio, "sleep", real_sleep)
            assert not port_open(served.port)

    async def answering() -> int:
        server = TrialServer()
        await server.start()
        provider = _HeldProvider()
        async with server.trial(_session(provider, [])) as served, \
                httpx.AsyncClient() as http:
            request = asyncio.create_task(http.post(served.base_url + "/chat/completions",
                                                    json=body, headers=auth))
            await provider.asked.wait()
            stopping = asyncio.create_task(server.aclose())
            await real_sleep(0)
            assert not stopping.done()
            provider.release.set()
            response = await request
            await stopping
            assert not port_open(served.port)
            return response.status_code

    asyncio.run(idle())
    assert pauses == []
    assert asyncio.run(answering()) == 200
