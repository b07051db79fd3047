"""The agent loop: provider call -> tool calls -> environment -> ... -> final state.

One trial is graded on the environment's end state and on the trace, never on the wording of
the final answer. A response cut at ``max_tokens`` (``finish_reason: "length"``) ends the trial as
``truncated``: its text is not a final answer and a cut tool call is not run (nor counted as an
invalid action). A refusal (the message's ``refusal``) is recorded in the trace. Reasoning
(``reasoning``, ``reasoning_details``) stays on the assistant turn sent back, as providers ask
for tool calling with reasoning models. Invalid calls (unknown tool, unparseable or
schema-invalid arguments) go back to the model as tool errors and are counted. Every message
sent and received, and the timing of every tool call, goes to the trace's transcript recorder
(gate.agent.transcript). A
``ProviderError`` is not caught here: the engine records the trial as lost to the provider,
never as a model failure.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gate.agent.transcript import TranscriptRecorder
from gate.config.schema import ToolCall
from gate.environments.base import Environment
from gate.project.load import LoadedTask
from gate.project.schema_check import validate
from gate.providers.base import AttemptSink, ChatRequest, Provider


@dataclass
class TrialTrace:
    """What happened in one trial (everything the score is computed from)."""

    steps: int = 0
    tool_calls: int = 0
    valid_calls: int = 0
    invalid: Counter[str] = field(default_factory=Counter)  # unknown_tool, unparseable, schema
    repeated_calls: int = 0
    wrong_fixes: int = 0
    policy_violations: list[str] = field(default_factory=list)
    distractor_actions: int = 0
    env_errors: int = 0
    evidence_seen: set[int] = field(default_factory=set)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    response_ids: list[str] = field(default_factory=list)
    ended: str = "step_limit"  # or "final_answer", "truncated" (finish_reason "length")
    truncations: int = 0  # responses cut at max_tokens
    refusals: list[str] = field(default_factory=list)  # the model's refusal texts (untrusted)
    calls: list[dict[str, Any]] = field(default_factory=list)
    transcript: TranscriptRecorder = field(default_factory=TranscriptRecorder)


@dataclass(frozen=True)
class TrialSpec:
    task: LoadedTask
    model: str
    seed: int
    system_prompt: str
    tools: list[dict[str, Any]]
    schemas: dict[str, dict[str, Any]]
    max_tokens: int
    temperature: float


def _matches(call: ToolCall, name: str, args: dict[str, Any]) -> bool:
    """A call matches a fixture call when the tool is the same and its args contain them."""
    return call.tool == name and all(args.get(k) == v for k, v in call.args.items())


async def run_trial(
    spec: TrialSpec,
    env: Environment,
    provider: Provider,
    on_attempt: AttemptSink,
    on_step: Any = None,
    transcript: TranscriptRecorder | None = None,
) -> TrialTrace:
    """Run one trial to a final answer or the step limit. Raises ProviderError/HaltError;
    ``transcript`` (the caller's, so that it outlives a raised error) records the messages."""
    trace = TrialTrace(transcript=transcript or TranscriptRecorder())
    recorder = trace.transcript
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": spec.system_prompt},
        {"role": "user", "content": spec.task.task.instruction},
    ]
    seen: set[str] = set()
    started = time.monotonic()
    for step in range(1, spec.task.task.step_limit + 1):
        trace.steps = step
        if on_step is not None:
            on_step(step)
        request = ChatRequest(spec.model, list(messages), spec.tools, spec.seed,
                              spec.max_tokens, spec.temperature)
        recorder.request(step, messages)
        response = await provider.complete(request, on_attempt)
        trace.response_ids.append(response.response_id)
        trace.tokens_in += response.usage.prompt_tokens
        trace.tokens_out += response.usage.completion_tokens
        trace.cost_usd += response.cost_usd
        message = _clean_assistant(response.message)
        messages.append(message)
        recorder.answer(message, response.response_id, response.finish_reason)
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            trace.refusals.append(refusal[:REFUSAL_CHARS])
        if response.finish_reason == "length":
            trace.truncations += 1
            trace.ended = "truncated"
            break
        tool_calls = message.get("tool_calls") or []
        if not tool_calls:
            trace.ended = "final_answer"
            content = message.get("content")
            recorder.final_answer = content if isinstance(content, str) else None
            break
        for tc in tool_calls:
            messages.append(_execute(spec, env, tc, trace, seen))
            recorder.tool_result(messages[-1])
    trace.latency_s = time.monotonic() - started
    return trace


REFUSAL_CHARS = 500
KEPT_FIELDS = ("tool_calls", "refusal", "reasoning", "reasoning_details")
"""Fields of an assistant turn sent back with it (when present and not empty)."""


def _clean_assistant(message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    for key in KEPT_FIELDS:
        if message.get(key):
            out[key] = message[key]
    return out


def execute_call(
    spec: TrialSpec, env: Environment, tc: dict[str, Any], trace: TrialTrace, seen: set[str]
) -> dict[str, Any]:
    """Check and execute one tool call as the built-in loop does, recording it in ``trace``.

    ``tc`` is an OpenAI tool call (``function.arguments`` a JSON string or an object); returns
    the ``tool`` message for the model. Used by agent programs' MCP tool server too.
    """
    return _execute(spec, env, tc, trace, seen)


def _execute(
    spec: TrialSpec, env: Environment, tc: dict[str, Any], trace: TrialTrace, seen: set[str]
) -> dict[str, Any]:
    """Check and run one call, timed into the transcript (``_check_and_run``)."""
    clock = trace.transcript.clock
    started = clock()
    reply = _check_and_run(spec, env, tc, trace, seen)
    call = trace.calls[-1]
    trace.transcript.tool(trace.steps, str(call["call_id"]), str(call["tool"]), started, clock())
    return reply


def _check_and_run(
    spec: TrialSpec, env: Environment, tc: dict[str, Any], trace: TrialTrace, seen: set[str]
) -> dict[str, Any]:
    trace.tool_calls += 1
    call_id = str(tc.get("id", f"call_{trace.tool_calls}"))
    fn = tc.get("function") or {}
    name = str(fn.get("name", ""))
    raw_args = fn.get("arguments")
    record: dict[str, Any] = {"step": trace.steps, "call_id": call_id, "tool": name}
    trace.calls.append(record)

    def reply(payload: dict[str, Any]) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": call_id,
                "content": json.dumps(payload, sort_keys=True, separators=(",", ":"))}

    if name not in spec.schemas:
        trace.invalid["unknown_tool"] += 1
        record["invalid"] = "unknown_tool"
        return reply({"error": f"unknown tool {name!r}; available: {sorted(spec.schemas)}"})
    try:
        args = json.loads(raw_args) if isinstance(raw_args, str) else raw_args
    except ValueError as exc:
        args = None
        parse_error = str(exc)
    else:
        parse_error = "" if isinstance(args, dict) else "arguments must be a JSON object"
    if not isinstance(args, dict):
        trace.invalid["unparseable"] += 1
        record["invalid"] = "unparseable"
        return reply({"error": f"arguments are not valid JSON: {parse_error}"})
    record["args"] = args
    key = json.dumps([name, args], sort_keys=True)
    if key in seen:
        trace.repeated_calls += 1
    seen.add(key)
    problems = validate(args, spec.schemas[name])
    if problems:
        trace.invalid["schema"] += 1
        record["invalid"] = "schema"
        return reply({"error": "invalid arguments: " + "; ".join(problems)})
    fixture = spec.task.fixture
    for i, ev in enumerate(fixture.required_evidence):
        if _matches(ev, name, args):
            trace.evidence_seen.add(i)
    distractor = any(_matches(d, name, args) for d in fixture.distractors)
    result = env.call(name, args)
    if distractor:
        trace.distractor_actions += 1
        record["distractor"] = True
    if result.invalid:  # the environment's own kind of invalid action (replay: unrecorded)
        trace.invalid[result.invalid] += 1
        record["invalid"] = result.invalid
        return reply({"error": result.error or f"invalid action: {result.invalid}"})
    trace.valid_calls += 1
    if result.wrong_fix:
        trace.wrong_fixes += 1
        record["wrong_fix"] = True
    if result.policy_violation:
        trace.policy_violations.append(result.policy_violation)
        record["policy_violation"] = result.policy_violation
    if result.error is not None:
        trace.env_errors += 1
        return reply({"error": result.error})
    return reply({"result": result.content})
