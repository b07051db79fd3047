"""``POST /v1/responses`` forwarded natively to a provider that declares ``responses_api: true``
(a loopback server speaking the Responses API's JSON), driven by the official `openai` SDK as a
program would: the provider gets the Responses body (the arm's model, the capped
``max_output_tokens``), through the same guards as a chat completion (price, budget, retries,
halt, one audit line per attempt with the provider's response id); a field the provider declares
unsupported is refused as OpenAI refuses one, and nothing is sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web
from endpoint_support import session
from provider_support import loopback_app

from gate.agent.endpoint import TrialSession
from gate.agent.serve import serve_trial
from gate.config.schema import Price, ProviderConfig, RetryPolicy, UnsupportedFields
from gate.errors import CircuitBreakerError
from gate.providers.budget import Budget
from gate.providers.factory import build_provider
from gate.providers.openai_compat import OpenAICompatProvider

TASK = "incident-easy-01-cache-crashed"
MODEL = "acme/gpt-test"
ALIAS = "acme--gpt-test"
PRICE = Price(prompt=0.000002, completion=0.000008)
KEY_ENV = "ACME_TEST_KEY"
TOOL = {"type": "function", "name": "check_status", "description": "status of a service",
        "parameters": {"type": "object", "properties": {"service": {"type": "string"}},
                       "required": ["service"]}, "strict": False}


def response_object(rid: str, body: dict[str, Any], output: list[dict[str, Any]]
                    ) -> dict[str, Any]:
    """A ``response`` object as OpenAI's Responses API returns it."""
    return {
        "id": rid, "object": "response", "created_at": 1741476542, "status": "completed",
        "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "model": body["model"] + "-2025",
        "output": output, "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None}, "store": True,
        "temperature": body.get("temperature", 1.0), "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
        "top_p": 1.0, "truncation": "disabled", "user": None, "metadata": {},
        "usage": {"input_tokens": 291, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": 23, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": 314},
    }


class ResponsesServer:
    """A provider on 127.0.0.1 that speaks only the Responses API. The first answer calls
    ``check_status``; the next ones answer in text. ``faults`` are statuses answered first."""

    def __init__(self, *faults: int) -> None:
        self.faults = list(faults)
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.answered = 0
        self.base_url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        body = await request.json()
        self.bodies.append(body)
        if self.faults:
            status = self.faults.pop(0)
            return web.json_response({"error": {"message": f"fault {status}", "type": "x",
                                                "code": None, "param": None}}, status=status)
        self.answered += 1
        n = self.answered
        if n == 1:
            output = [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1",
                 "name": "check_status", "arguments": '{"service":"cache"}',
                 "status": "completed"}]
        else:
            output = [{"type": "message", "id": f"msg_{n}", "status": "completed",
                       "role": "assistant", "content": [
                           {"type": "output_text", "text": "The cache was restarted. " * 5,
                            "annotations": []}]}]
        return web.json_response(response_object(f"resp_{n}", body, output))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ResponsesServer]:
        async with loopback_app("/v1/responses", self.handle) as base_url:
            self.base_url = base_url
            yield self


def provider_config(base_url: str, *, responses: list[str] | None = None,
                    chat: list[str] | None = None) -> ProviderConfig:
    return ProviderConfig(
        type="openai", base_url=base_url, api_key_env=KEY_ENV, pricing="table",
        prices={MODEL: PRICE}, responses_api=True,
        unsupported_fields=UnsupportedFields(responses=responses or [],
                                             chat_completions=chat or []),
        retry=RetryPolicy(initial_wait_s=0.0, jitter_s=0.0, cooldown_s=0.0))


@asynccontextmanager
async def trial(server: ResponsesServer, budget: Budget, **unsupported: list[str]
                ) -> AsyncIterator[tuple[TrialSession, list[Any], openai.AsyncOpenAI]]:
    async with server.running(), httpx.AsyncClient() as client:
        cfg = provider_config(server.base_url, **unsupported)
        prov: OpenAICompatProvider = build_provider(
            "acme", cfg, client, budget=budget, notice=lambda _: None,
            env={KEY_ENV: "sk-acme-test"})
        s, audit = session(TASK, model=MODEL, provider=prov)
        async with serve_trial(s) as served, openai.AsyncOpenAI(
                base_url=served.base_url, api_key="trial-token", max_retries=0) as llm:
            yield s, audit, llm


def test_responses_are_forwarded_natively_through_the_guards() -> None:
    server = ResponsesServer(429)  # one rate limit first: retried by the guards
    budget = Budget(1.0)

    async def go() -> tuple[TrialSession, list[Any], list[Any]]:
        async with trial(server, budget) as (s, audit, llm):
            first = await llm.responses.create(model=ALIAS, input="the cache is down",
                                               tools=[TOOL], max_output_tokens=100_000,
                                               store=True, metadata={"team": "a"})
            (call,) = [o for o in first.output if o.type == "function_call"]
            second = await llm.responses.create(
                model=ALIAS, previous_response_id=first.id, input=[
                    {"type": "function_call_output", "call_id": call.call_id, "output": "ok"}])
            return s, audit, [first, second, call]

    s, audit, (first, second, call) = asyncio.run(go())
    assert server.paths == ["/v1/responses"] * 3  # never translated to chat completions
    sent = server.bodies[-2]
    assert sent["model"] == MODEL  # the arm's id, whatever alias the program used
    assert sent["max_output_tokens"] == s.spec.max_tokens  # capped: the budget's projection
    assert sent["tools"] == [TOOL]
    assert "stream" not in sent
    assert (sent["store"], sent["metadata"]) == (True, {"team": "a"})  # native: nothing dropped
    assert s.ignored_fields == set()
    assert server.bodies[-1]["previous_response_id"] == "resp_1"
    assert (first.id, second.id) == ("resp_1", "resp_2")  # the provider's own response
    assert call.name == "check_status"
    assert [(step, a.outcome, a.response_id) for step, a in audit] == [
        (1, "rate_limited", None), (1, "ok", "resp_1"), (2, "ok", "resp_2")]
    cost = 291 * PRICE.prompt + 23 * PRICE.completion
    assert audit[1][1].cost_computed_usd == pytest.approx(cost)
    assert budget.spent_usd == pytest.approx(2 * cost)
    assert s.trace.response_ids == ["resp_1", "resp_2"]
    assert s.trace.tokens_in == 2 * 291
    assert all("seed" not in b for b in server.bodies)  # the Responses API has no seed:
    assert s.unseeded_calls == 2  # each model call is counted unseeded (a retry is one call)


def test_a_streamed_native_response_is_the_providers_response() -> None:
    server = ResponsesServer()

    async def go() -> tuple[list[str], Any]:
        async with trial(server, Budget(1.0)) as (_, _audit, llm), llm.responses.stream(
                model=ALIAS, input="hi", tools=[TOOL]) as events:
            kinds = [e.type async for e in events]
            final = await events.get_final_response()
        return kinds, final

    kinds, final = asyncio.run(go())
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert final.id == "resp_1"
    assert [o.type for o in final.output] == ["reasoning", "function_call"]
    assert "stream" not in server.bodies[0]


def test_a_field_the_provider_declares_unsupported_is_refused_as_it_would_refuse_it() -> None:
    server = ResponsesServer()

    async def go() -> tuple[TrialSession, list[Any], list[Exception]]:
        errors: list[Exception] = []
        async with trial(server, Budget(1.0), responses=["top_p"], chat=["logit_bias"]) as (
                s, audit, llm):
            for call in (
                llm.responses.create(model=ALIAS, input="hi", top_p=0.5),
                llm.chat.completions.create(model=ALIAS, messages=[
                    {"role": "user", "content": "hi"}], logit_bias={"50256": -100}),
                llm.responses.create(model=ALIAS, input="hi", previous_response_id="resp_x"),
            ):
                try:
                    await call
                except openai.BadRequestError as exc:
                    errors.append(exc)
        return s, audit, errors

    s, audit, errors = asyncio.run(go())
    assert [(e.status_code, e.code, e.param) for e in errors[:2]] == [  # type: ignore[attr-defined]
        (400, "unsupported_parameter", "top_p"), (400, "unsupported_parameter", "logit_bias")]
    assert len(errors) == 3  # another trial's response id is refused too
    assert server.bodies == []  # nothing was sent
    assert audit == []
    assert s.rejected == {"unsupported": 3}
    assert s.model_calls == 0


def test_a_402_on_the_responses_wire_halts_the_provider() -> None:
    server = ResponsesServer(402)

    async def go() -> tuple[TrialSession, OpenAICompatProvider, int]:
        async with trial(server, Budget(1.0)) as (s, _audit, llm):
            with pytest.raises(openai.APIStatusError) as caught:
                await llm.responses.create(model=ALIAS, input="hi")
            assert isinstance(s.provider, OpenAICompatProvider)
            return s, s.provider, caught.value.status_code

    s, prov, status = asyncio.run(go())
    assert status == 402
    assert isinstance(s.end_reason, CircuitBreakerError)
    assert prov.stats.halted is not None  # the chat wire of this provider is stopped as well
    assert len(server.bodies) == 1


def test_gate_yaml_refuses_responses_api_on_the_mock_provider() -> None:
    with pytest.raises(ValueError, match="responses_api"):
        ProviderConfig(type="mock", responses_api=True)
    assert json.loads(ProviderConfig(type="mock").model_dump_json())["responses_api"] is False
