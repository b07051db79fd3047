"""Simulated models served by the built-in ``mock`` provider (in-process).

The model recognises the task from the conversation's first user message (the task's
instruction) and acts on the task's fixture:

- ``mock/expert``: follows the reference trajectory, then answers with the reference output.
- ``mock/expert@P``: at each step, with probability 1-P takes a distractor action instead
  (or a random schema-valid call when the task has none); otherwise it continues the
  reference trajectory from where it is.
- ``mock/random``: random schema-valid tool calls; stops at random.
- ``mock/garbled``: tool calls whose arguments are not JSON.
- ``mock/looper``: repeats the same call forever.

The request's ``tool_choice`` is honoured: ``"none"`` answers without a tool call,
``"required"`` always calls a tool (the next reference call, else a random one), and a named
function is the tool called. The instruction may come as plain text or as a list of text parts.

Every choice is drawn from a generator seeded by (request seed, task, model, step), so a
model is deterministic given the run seed, and two arms given the same seed are paired.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate.config.schema import Price, ToolCall
from gate.errors import CircuitBreakerError
from gate.project.load import LoadedTask, Project, load_project
from gate.providers.base import (
    Attempt,
    AttemptSink,
    ChatRequest,
    ChatResponse,
    ErrorKind,
    ProviderError,
    Usage,
)

_BASE_PRICE = Price(prompt=0.0000001, completion=0.0000002)
EXPERT_P_VALUES = ("0.5", "0.6", "0.7", "0.8", "0.9", "0.95", "0.99")
MOCK_PRICES: dict[str, Price] = {
    "mock/expert": _BASE_PRICE,
    "mock/random": _BASE_PRICE,
    "mock/garbled": _BASE_PRICE,
    "mock/looper": _BASE_PRICE,
    **{f"mock/expert@{p}": _BASE_PRICE for p in EXPERT_P_VALUES},
}
_EXPERT_AT = re.compile(r"^mock/expert@(0(?:\.\d+)?|1(?:\.0+)?)$")


def mock_model_ids() -> list[str]:
    return sorted(MOCK_PRICES)


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def random_value(schema: dict[str, Any], rng: random.Random) -> Any:
    """A random value valid against a tool-schema subset (see gate.project.schema_check)."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type", "object")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required", []))
        return {k: random_value(s, rng) for k, s in props.items()
                if k in required or rng.random() < 0.5}
    if kind == "integer":
        lo, hi = int(schema.get("minimum", 0)), int(schema.get("maximum", 1000))
        return rng.randint(lo, hi)
    if kind == "number":
        lo_f, hi_f = float(schema.get("minimum", 0.0)), float(schema.get("maximum", 1000.0))
        return round(rng.uniform(lo_f, hi_f), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return [random_value(schema.get("items", {"type": "string"}), rng)
                for _ in range(rng.randint(1, 3))]
    length = max(int(schema.get("minLength", 1)), rng.randint(3, 8))
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(length))


@dataclass(frozen=True)
class _Turn:
    task: LoadedTask
    step: int  # assistant messages so far
    reference_done: int  # reference calls already made, in order
    last_call: ToolCall | None


class MockProvider:
    """In-process provider of the simulated models. Implements ``Provider``."""

    def __init__(self, project: Project, *, payment_required_after: int | None = None,
                 name: str = "mock") -> None:
        self.name = name
        self._by_instruction = {lt.task.instruction.strip(): lt for lt in project.tasks}
        self._schemas = {env: project.tool_schemas(env) for env in project.tools}
        self._payment_required_after = payment_required_after
        self.calls = 0

    @classmethod
    def from_config(cls, config_path: str | Path = "gate.yaml") -> MockProvider:
        return cls(load_project(config_path))

    async def aclose(self) -> None:
        return None

    async def complete(self, request: ChatRequest, on_attempt: AttemptSink) -> ChatResponse:
        self.calls += 1
        sha = request.sha256()
        if self._payment_required_after is not None and self.calls > self._payment_required_after:
            on_attempt(Attempt(1, ErrorKind.PAYMENT_REQUIRED.value, sha, http_status=402,
                               error="simulated 402: insufficient credits"))
            raise CircuitBreakerError("HTTP 402 payment required (mock: insufficient credits)")
        price = MOCK_PRICES.get(request.model)
        if price is None and not _EXPERT_AT.match(request.model):
            on_attempt(Attempt(1, ErrorKind.BAD_REQUEST.value, sha, http_status=400,
                               error=f"unknown mock model {request.model!r}"))
            raise ProviderError(ErrorKind.BAD_REQUEST, f"unknown mock model {request.model!r}",
                                provider=self.name, status=400)
        message = self.respond(request)
        usage = _usage(request, message)
        price = price or _BASE_PRICE
        cost = (usage.prompt_tokens * price.prompt + usage.completion_tokens * price.completion
                + price.request)
        response_id = f"mock-{sha[:24]}"
        on_attempt(Attempt(1, "ok", sha, http_status=200, response_id=response_id,
                           prompt_tokens=usage.prompt_tokens,
                           completion_tokens=usage.completion_tokens,
                           cost_reported_usd=cost, cost_computed_usd=cost))
        return ChatResponse(response_id, message, usage, cost, latency_s=0.0)

    # --- behaviour ---------------------------------------------------------------------

    def respond(self, request: ChatRequest) -> dict[str, Any]:
        """The assistant message a simulated model sends for this conversation."""
        turn = self._turn(request.messages)
        if turn is None:
            return {"role": "assistant", "content": "I cannot tell which task this is."}
        rng = _rng(request.seed, turn.task.task.id, request.model, turn.step)
        if request.tool_choice == "none":
            return {"role": "assistant", "content": turn.task.fixture.reference_output}
        call = self._forced(request.tool_choice, self._choose(request.model, turn, rng), turn, rng)
        if call is None:
            return {"role": "assistant", "content": turn.task.fixture.reference_output}
        return _tool_call_message(call, turn.step, garbled=request.model == "mock/garbled")

    def _choose(self, model: str, turn: _Turn, rng: random.Random) -> ToolCall | None:
        reference = turn.task.fixture.reference_trajectory
        if model == "mock/expert":
            return reference[turn.reference_done] if turn.reference_done < len(reference) else None
        at = _EXPERT_AT.match(model)
        if at:
            if rng.random() >= float(at.group(1)):
                return self._distractor(turn, rng)
            return reference[turn.reference_done] if turn.reference_done < len(reference) else None
        if model == "mock/looper":
            return turn.last_call or reference[0]
        if model in ("mock/random", "mock/garbled"):
            if turn.step > 0 and rng.random() < 0.08:
                return None
            return self._random_call(turn, rng)
        return None

    def _forced(
        self, choice: str | dict[str, Any], call: ToolCall | None, turn: _Turn, rng: random.Random
    ) -> ToolCall | None:
        """``call`` bent to ``tool_choice``: "required" and a named function force a call."""
        reference = turn.task.fixture.reference_trajectory
        if choice == "required" and call is None:
            done = turn.reference_done
            return reference[done] if done < len(reference) else self._random_call(turn, rng)
        if not isinstance(choice, dict):
            return call
        name = str((choice.get("function") or {}).get("name", ""))
        if call is not None and call.tool == name:
            return call
        for candidate in reference[turn.reference_done:]:
            if candidate.tool == name:
                return candidate
        schema = self._schemas[turn.task.task.environment].get(name, {"type": "object"})
        return ToolCall(tool=name, args=random_value(schema, rng))

    def _distractor(self, turn: _Turn, rng: random.Random) -> ToolCall:
        distractors = turn.task.fixture.distractors
        return rng.choice(distractors) if distractors else self._random_call(turn, rng)

    def _random_call(self, turn: _Turn, rng: random.Random) -> ToolCall:
        schemas = self._schemas[turn.task.task.environment]
        name = rng.choice(sorted(schemas))
        return ToolCall(tool=name, args=random_value(schemas[name], rng))

    def _turn(self, messages: list[dict[str, Any]]) -> _Turn | None:
        first_user = next((m for m in messages if m.get("role") == "user"), None)
        if first_user is None:
            return None
        task = self._by_instruction.get(text_of(first_user.get("content")).strip())
        if task is None:
            return None
        reference = task.fixture.reference_trajectory
        done, step, last = 0, 0, None
        for m in messages:
            if m.get("role") != "assistant":
                continue
            step += 1
            for tc in m.get("tool_calls") or []:
                call = _parse_call(tc)
                if call is None:
                    continue
                last = call
                if done < len(reference) and call == reference[done]:
                    done += 1
        return _Turn(task, step, done, last)


def text_of(content: Any) -> str:
    """A message's text: the string, or its text parts joined (``[{"type": "text", ...}]``)."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content
                       if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


def _parse_call(tool_call: dict[str, Any]) -> ToolCall | None:
    fn = tool_call.get("function") or {}
    try:
        args = json.loads(fn.get("arguments") or "{}")
    except (TypeError, ValueError):
        return None
    if not isinstance(args, dict):
        return None
    return ToolCall(tool=str(fn.get("name", "")), args=args)


def _tool_call_message(call: ToolCall, step: int, *, garbled: bool) -> dict[str, Any]:
    arguments = json.dumps(call.args, sort_keys=True)
    if garbled:
        arguments = arguments.replace('"', "").rstrip("}") + ",,"
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{step}",
                "type": "function",
                "function": {"name": call.tool, "arguments": arguments},
            }
        ],
    }


def _usage(request: ChatRequest, message: dict[str, Any]) -> Usage:
    prompt_chars = len(json.dumps(request.messages)) + len(json.dumps(request.tools))
    completion_chars = len(json.dumps(message))
    return Usage(prompt_tokens=max(1, prompt_chars // 4),
                 completion_tokens=max(1, completion_chars // 4))
