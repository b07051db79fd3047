"""Simulated models served by the built-in ``mock`` provider (in-process).

The model recognises the task by its instruction, found anywhere in the conversation's user
messages (a program may wrap it in a template; the longest instruction found wins), and acts on
the task's fixture:

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

The models accept what real models accept from agent frameworks:

- tool names with a consistent prefix or suffix the program added (``gate_check_status``):
  the model calls them by the names offered;
- ``response_format`` (``json_schema``, ``json_object``): the final answer is JSON valid against
  the schema, its strings the reference output;
- a framework's output tool (an offered tool that is not the environment's, named like
  ``final_result``): called, with arguments valid against its schema, once the work is done;
- ``parallel_tool_calls: true``: the expert sends the run of independent reads (calls of the
  task's required evidence) that follows its next call in one message, as many as the seed
  draws.

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
from gate.simulate.habits import (
    OUTPUT_TOOL,
    Naming,
    is_read,
    naming,
    schema_value,
    tool_name,
    tool_parameters,
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
    schemas: dict[str, dict[str, Any]]  # the environment's tools, by their own names
    naming: Naming  # how the request names them
    output_tools: dict[str, dict[str, Any]]  # offered tools that are not the environment's


class MockProvider:
    """In-process provider of the simulated models. Implements ``Provider``."""

    def __init__(self, project: Project, *, payment_required_after: int | None = None,
                 name: str = "mock") -> None:
        self.name = name
        by_instruction: dict[str, list[LoadedTask]] = {}
        for lt in project.tasks:
            by_instruction.setdefault(lt.task.instruction.strip(), []).append(lt)
        self._instructions = sorted(by_instruction.items(), key=lambda kv: -len(kv[0]))
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
        turn = self._turn(request)
        if turn is None:
            return {"role": "assistant", "content": "I cannot tell which task this is."}
        rng = _rng(request.seed, turn.task.task.id, request.model, turn.step)
        if request.tool_choice == "none":
            return _answer(request, turn)
        call = self._forced(request.tool_choice, self._choose(request.model, turn, rng), turn, rng)
        if call is None:
            return _output_call(turn) or _answer(request, turn)
        calls = [call]
        if request.options.get("parallel_tool_calls") is True and call.tool in turn.schemas:
            calls += self._parallel_reads(request, turn)
        return _tool_call_message(calls, turn, garbled=request.model == "mock/garbled")

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
        """``call`` bent to ``tool_choice``: "required" and a named function force a call (the
        framework's output tool once the work is done, when it offers one)."""
        reference = turn.task.fixture.reference_trajectory
        if choice == "required" and call is None:
            done = turn.reference_done
            if done >= len(reference) and turn.output_tools:
                return None  # the caller calls the output tool
            return reference[done] if done < len(reference) else self._random_call(turn, rng)
        if not isinstance(choice, dict):
            return call
        name = turn.naming.inner(str((choice.get("function") or {}).get("name", "")))
        if name not in turn.schemas:
            return None  # an output tool: called by the caller
        if call is not None and call.tool == name:
            return call
        for candidate in reference[turn.reference_done:]:
            if candidate.tool == name:
                return candidate
        return ToolCall(tool=name, args=random_value(turn.schemas.get(name, {}), rng))

    def _parallel_reads(self, request: ChatRequest, turn: _Turn) -> list[ToolCall]:
        """Reads the reference trajectory makes right after the next call, sent in the same
        message: how many of the run of independent reads (required evidence) is drawn from
        the seed, so a run stays reproducible."""
        reference = turn.task.fixture.reference_trajectory
        evidence = turn.task.fixture.required_evidence
        first = turn.reference_done
        if first >= len(reference) or not is_read(reference[first], evidence):
            return []
        run = 0
        while first + 1 + run < len(reference) and is_read(reference[first + 1 + run], evidence):
            run += 1
        rng = _rng(request.seed, turn.task.task.id, request.model, turn.step, "parallel")
        return list(reference[first + 1: first + 1 + rng.randint(0, run)]) if run else []

    def _distractor(self, turn: _Turn, rng: random.Random) -> ToolCall:
        distractors = turn.task.fixture.distractors
        return rng.choice(distractors) if distractors else self._random_call(turn, rng)

    def _random_call(self, turn: _Turn, rng: random.Random) -> ToolCall:
        schemas = turn.schemas
        name = rng.choice(sorted(schemas))
        return ToolCall(tool=name, args=random_value(schemas[name], rng))

    def _task_of(self, request: ChatRequest) -> LoadedTask | None:
        """The task whose instruction appears in a user message (the longest such instruction;
        among tasks sharing it, the one whose environment's tools are offered)."""
        offered = [tool_name(t) for t in request.tools]
        for m in request.messages:
            if m.get("role") != "user":
                continue
            text = text_of(m.get("content"))
            for instruction, tasks in self._instructions:
                if instruction in text:
                    return max(tasks, key=lambda lt: naming(
                        offered, self._schemas[lt.task.environment]).matched)
        return None

    def _turn(self, request: ChatRequest) -> _Turn | None:
        task = self._task_of(request)
        if task is None:
            return None
        schemas = self._schemas[task.task.environment]
        offered = [tool_name(t) for t in request.tools]
        names = naming(offered, schemas)
        output_tools = {tool_name(t): tool_parameters(t) for t in request.tools
                        if names.inner(tool_name(t)) not in schemas}
        reference = task.fixture.reference_trajectory
        done, step, last = 0, 0, None
        for m in request.messages:
            if m.get("role") != "assistant":
                continue
            step += 1
            for tc in m.get("tool_calls") or []:
                call = _parse_call(tc, names)
                if call is None:
                    continue
                last = call
                if done < len(reference) and call == reference[done]:
                    done += 1
        return _Turn(task, step, done, last, schemas, names, output_tools)


def _output_call(turn: _Turn) -> dict[str, Any] | None:
    """A call of the framework's output tool, once the work is done, when one is offered."""
    if turn.reference_done < len(turn.task.fixture.reference_trajectory):
        return None
    names = [n for n in sorted(turn.output_tools) if OUTPUT_TOOL.search(n)]
    if not names:
        return None
    value = schema_value(turn.output_tools[names[0]], turn.task.fixture.reference_output)
    arguments = json.dumps(value if isinstance(value, dict) else {"response": value})
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"call_{turn.step}", "type": "function",
         "function": {"name": names[0], "arguments": arguments}}]}


def _answer(request: ChatRequest, turn: _Turn) -> dict[str, Any]:
    """The final answer: the reference output, as JSON valid against the schema when
    ``response_format`` asks for one."""
    text = turn.task.fixture.reference_output
    asked = request.options.get("response_format")
    kind = asked.get("type") if isinstance(asked, dict) else None
    if kind == "json_schema":
        schema = (asked.get("json_schema") or {}).get("schema") or {}  # type: ignore[union-attr]
        text = json.dumps(schema_value(schema, text))
    elif kind == "json_object":
        text = json.dumps({"answer": text})
    return {"role": "assistant", "content": text}


def text_of(content: Any) -> str:
    """A message's text: the string, or its text parts joined (``[{"type": "text", ...}]``)."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content
                       if isinstance(p, dict) and p.get("type") in ("text", "input_text"))
    return "" if content is None else str(content)


def _parse_call(tool_call: dict[str, Any], naming: Naming) -> ToolCall | None:
    fn = tool_call.get("function") or {}
    try:
        args = json.loads(fn.get("arguments") or "{}")
    except (TypeError, ValueError):
        return None
    if not isinstance(args, dict):
        return None
    return ToolCall(tool=naming.inner(str(fn.get("name", ""))), args=args)


def _tool_call_message(calls: list[ToolCall], turn: _Turn, *, garbled: bool) -> dict[str, Any]:
    tool_calls = []
    for i, call in enumerate(calls):
        arguments = json.dumps(call.args, sort_keys=True)
        if garbled:
            arguments = arguments.replace('"', "").rstrip("}") + ",,"
        name = turn.naming.outer(call.tool) if call.tool in turn.schemas else call.tool
        tool_calls.append({"id": f"call_{turn.step}" + (f"_{i}" if i else ""),
                           "type": "function", "function": {"name": name, "arguments": arguments}})
    return {"role": "assistant", "content": None, "tool_calls": tool_calls}


def _usage(request: ChatRequest, message: dict[str, Any]) -> Usage:
    prompt_chars = len(json.dumps(request.messages)) + len(json.dumps(request.tools))
    completion_chars = len(json.dumps(message))
    return Usage(prompt_tokens=max(1, prompt_chars // 4),
                 completion_tokens=max(1, completion_chars // 4))
