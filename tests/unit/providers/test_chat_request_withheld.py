"""A provider's ``unsupported_fields.chat_completions`` against gate's own requests: the fields
gate sends on its own account are left out (``max_tokens`` becomes ``max_completion_tokens``),
a program's own choice never is; the fields gate cannot do without are refused by validate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gate.config.schema import GateConfig
from gate.project.provider_check import loop_environments, provider_field_problems
from gate.providers.base import ChatRequest, withheld_fields
from gate.providers.chat_wire import ChatWire

TOOLS = [{"type": "function", "function": {"name": "check_status", "parameters": {}}}]


def request(withheld: frozenset[str] = frozenset(), tool_choice: Any = "auto") -> ChatRequest:
    return ChatRequest("acme/m", [{"role": "user", "content": "hi"}], TOOLS, 7, 256, 0.0,
                       tool_choice=tool_choice, withheld=withheld)


def sent(req: ChatRequest) -> dict[str, Any]:
    return json.loads(ChatWire.encode(req).content)  # type: ignore[no-any-return]


def test_nothing_declared_sends_every_field_of_gates_own() -> None:
    body = sent(request())
    assert body["seed"] == 7
    assert (body["max_tokens"], body["temperature"], body["tool_choice"]) == (256, 0.0, "auto")
    assert body["usage"] == {"include": True}


def test_declared_fields_are_left_out_and_the_cap_changes_its_name() -> None:
    withheld = withheld_fields(["seed", "temperature", "max_tokens", "tool_choice", "usage",
                                "top_p"])
    assert withheld == {"seed", "temperature", "max_tokens", "tool_choice", "usage"}
    body = sent(request(withheld))
    assert set(body) == {"model", "messages", "tools", "max_completion_tokens"}
    assert body["max_completion_tokens"] == 256  # the cap the budget projects still reaches it


def test_a_programs_own_tool_choice_is_never_dropped() -> None:
    body = sent(request(frozenset({"tool_choice"}), tool_choice="required"))
    assert body["tool_choice"] == "required"  # the provider refuses it itself, as it would


def test_the_audit_hash_is_of_the_body_sent() -> None:
    plain, withheld = request(), request(frozenset({"seed"}))
    assert plain.sha256() != withheld.sha256()
    assert "seed" not in json.loads(withheld.canonical_json())


def config(chat: list[str], agent: Any = "builtin",
           overrides: dict[str, Any] | None = None, responses: list[str] | None = None
           ) -> GateConfig:
    return GateConfig.model_validate({
        "providers": {"acme": {"base_url": "https://acme.test/v1", "api_key_env": "ACME_KEY",
                               "responses_api": True, "unsupported_fields": {
                                   "chat_completions": chat, "responses": responses or []}}},
        "agent": agent, "agent_overrides": overrides or {}})


PROGRAM = {"command": ["python", "agent.py"]}
WHERE = ("providers", "acme", "unsupported_fields", "chat_completions")


@pytest.mark.parametrize("field", ["model", "messages"])
def test_what_every_request_carries_is_refused_whatever_the_agent(field: str) -> None:
    cfg = config(["seed", field], agent=PROGRAM)
    (problem,) = provider_field_problems(cfg, loop_environments(cfg, ["incident"]))
    assert problem[0] == (*WHERE, 1)
    assert f"[1]: {field!r} cannot be unsupported" in problem[1]


def test_tools_are_refused_only_while_the_built_in_loop_runs_a_task() -> None:
    cfg = config(["tools"])
    (problem,) = provider_field_problems(cfg, loop_environments(cfg, ["incident", "orders"]))
    assert problem[0] == (*WHERE, 0)
    assert "built-in loop" in problem[1]
    assert "incident, orders" in problem[1]
    programs = config(["tools"], agent=PROGRAM)
    assert provider_field_problems(programs, loop_environments(programs, ["incident"])) == []
    mixed = config(["tools"], agent=PROGRAM, overrides={"orders": "builtin"})
    assert loop_environments(mixed, ["incident", "orders"]) == ["orders"]


def test_both_token_caps_are_refused_and_one_is_withheld() -> None:
    cfg = config(["max_completion_tokens", "max_tokens"])
    (problem,) = provider_field_problems(cfg, [])
    assert problem[0] == (*WHERE, 0)
    assert "budget" in problem[1]
    assert provider_field_problems(config(["max_tokens", "seed", "temperature"]), ["x"]) == []


@pytest.mark.parametrize("field", ["model", "max_output_tokens"])
def test_what_gate_sets_on_every_native_responses_call_is_refused(field: str) -> None:
    cfg = config([], agent=PROGRAM, responses=["top_p", field])
    (problem,) = provider_field_problems(cfg, [])
    assert problem[0] == ("providers", "acme", "unsupported_fields", "responses", 1)
    assert f"responses[1]: {field!r} cannot be unsupported" in problem[1]
