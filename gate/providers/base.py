"""Provider contract: one required async method, ``complete``.

A provider takes a ``ChatRequest`` (OpenAI chat-completions shape), reports every attempt it
makes to the ``on_attempt`` sink (the engine writes those to audit.jsonl), and returns a
``ChatResponse`` or raises ``ProviderError`` once its retries are exhausted. It raises
``CircuitBreakerError`` (gate.errors) when spending must stop (HTTP 402, budget ceiling).
``ErrorKind`` and ``ProviderError`` live in gate.errors with every other exception; they are
re-exported here.

A provider may also declare ``capabilities`` (``Capabilities``: it serves the Responses API,
request fields it refuses); one that declares ``responses_api`` implements ``respond`` too
(``ResponsesProvider``), which the recording endpoint calls to forward a program's
``POST /v1/responses`` natively.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

from gate.errors import ErrorKind, ProviderError

RETRYABLE: frozenset[ErrorKind] = frozenset(
    {
        ErrorKind.RATE_LIMITED,
        ErrorKind.SERVER_ERROR,
        ErrorKind.ERROR_IN_BODY,
        ErrorKind.MALFORMED_RESPONSE,
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECTION_ERROR,
        ErrorKind.FINISH_ERROR,
    }
)


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    seed: int
    max_tokens: int
    temperature: float = 0.0
    tool_choice: str | dict[str, Any] = "auto"  # "auto", "none", "required" or a named function
    options: dict[str, Any] = field(default_factory=dict)
    """Fields of ``BEHAVIOUR_FIELDS`` an agent program set, sent as it set them."""
    withheld: frozenset[str] = frozenset()
    """Fields of gate's own (``WITHHOLDABLE``) the provider declares unsupported: left out of
    the body (``max_tokens`` is sent as ``max_completion_tokens``); see ``withheld_fields``."""

    def body(self) -> dict[str, Any]:
        """The JSON body of ``POST /chat/completions``."""
        body: dict[str, Any] = {"model": self.model, "messages": self.messages}
        limit = "max_completion_tokens" if "max_tokens" in self.withheld else "max_tokens"
        for key, value in (("seed", self.seed), (limit, self.max_tokens),
                           ("temperature", self.temperature)):
            if key not in self.withheld:
                body[key] = value
        if self.tools:
            body["tools"] = self.tools
            if "tool_choice" not in self.withheld or self.tool_choice != "auto":
                body["tool_choice"] = self.tool_choice  # a program's own choice is never dropped
        body.update(self.options)
        return body

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def canonical_json(self) -> str:
        """``body()`` as compact JSON with sorted keys (what ``sha256`` hashes); made once."""
        return self._canonical

    @cached_property
    def _canonical(self) -> str:
        return json.dumps(self.body(), sort_keys=True, separators=(",", ":"))


BEHAVIOUR_FIELDS = frozenset({
    "response_format", "parallel_tool_calls", "stop", "top_p", "reasoning_effort",
    "frequency_penalty", "presence_penalty", "logit_bias", "verbosity",
})
"""Chat-completions fields that change the answer and are sent to the provider as given (a
provider that does not support one refuses the request itself)."""

REQUIRED_FIELDS = ("model", "messages")
"""Chat-completions fields every request gate sends carries (the built-in loop's, the recording
endpoint's, a translated Responses call's): a provider declaring one of them unsupported cannot
run a task, and ``gate validate`` refuses the declaration."""

RESPONSES_REQUIRED = ("model", "max_output_tokens")
"""Responses API fields gate sets on every natively forwarded call (the arm's model, the cap the
budget projects): declared unsupported in ``unsupported_fields.responses``, refused by
``gate validate``."""

LOOP_FIELDS = ("tools",)
"""Chat-completions fields the built-in loop sends on every call (the task's tools): declared
unsupported, they are refused by ``gate validate`` when the built-in loop runs a task."""

WITHHOLDABLE = frozenset({"seed", "temperature", "tool_choice", "max_tokens", "usage"})
"""Chat-completions fields gate sends on its own account (the trial's seed, ``run.temperature``,
``tool_choice: auto``, the ``max_tokens`` cap, OpenRouter's ``usage: {include: true}``) that it
leaves out when the provider declares them unsupported, rather than have every call refused.
``max_tokens`` is then sent as ``max_completion_tokens`` (the cap the budget projects must
reach the provider: declaring both unsupported is refused by ``gate validate``)."""


def withheld_fields(unsupported: frozenset[str] | set[str] | list[str]) -> frozenset[str]:
    """The fields gate leaves out of its chat-completions requests to a provider that declares
    ``unsupported`` (gate.yaml ``unsupported_fields.chat_completions``)."""
    return WITHHOLDABLE.intersection(unsupported)


def tool_choice_problem(choice: Any, tools: list[dict[str, Any]]) -> str | None:
    """Why ``tool_choice`` is invalid for these ``tools`` (None when it is valid)."""
    if choice in (None, "auto", "none"):
        return None
    if choice == "required":
        return None if tools else "tool_choice 'required' needs tools"
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        names = {(t.get("function") or {}).get("name") for t in tools}
        return None if name in names else f"tool_choice names a function not in tools: {name!r}"
    return "tool_choice must be 'auto', 'none', 'required' or {type: function, function: {name}}"


def response_format_problem(value: Any) -> str | None:
    """Why ``response_format`` is not one a chat-completions provider accepts (None when it is)."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        return None
    if kind != "json_schema":
        return "response_format.type must be 'text', 'json_object' or 'json_schema'"
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
            or not isinstance(spec.get("schema", {}), dict):
        return "response_format.json_schema needs a name and a schema object"
    return None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost_reported: float | None = None  # ``usage.cost`` when the provider reports it
    cached_tokens: int = 0  # ``usage.prompt_tokens_details.cached_tokens``: part of prompt_tokens


@dataclass(frozen=True)
class ChatResponse:
    response_id: str
    message: dict[str, Any]  # the assistant message: role, content, tool_calls
    usage: Usage
    cost_usd: float  # computed from usage and the price list
    latency_s: float
    http_status: int = 200
    finish_reason: str | None = None  # "stop", "tool_calls", "length" (truncated), ...


@dataclass(frozen=True)
class Attempt:
    """One provider attempt, successful or not. The engine adds ts/arm/task/round/step."""

    attempt: int  # 1-based within one call
    outcome: str  # "ok" or an ErrorKind value
    request_sha256: str
    http_status: int | None = None
    response_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_reported_usd: float | None = None
    cost_computed_usd: float = 0.0
    latency_s: float = 0.0
    error: str | None = None  # short, secret-free description
    finish_reason: str | None = None  # of choices[0], when the provider answered one
    cached_tokens: int = 0  # prompt tokens the provider served from its cache
    extra: dict[str, Any] = field(default_factory=dict)
    attempt_id: str = ""  # the id of its ``AttemptStart`` (two-phase audit), "" when none


@dataclass(frozen=True)
class AttemptStart:
    """An attempt about to leave: announced before the request is handed to the HTTP transport."""

    attempt_id: str  # unique; the outcome's ``Attempt.attempt_id`` repeats it
    attempt: int  # 1-based within one call
    request_sha256: str


AttemptSink = Callable[[Attempt], None]


@runtime_checkable
class TwoPhaseSink(Protocol):
    """An attempt sink that also records each attempt *before* it is sent (audit-before-send).

    A provider calls ``started`` first, synchronously, right before it hands the request to its
    HTTP client's transport (nothing has been sent yet), then the sink itself with the outcome
    (same ``attempt_id``). A start without an outcome is an ``interrupted`` attempt: the provider
    may or may not have received it, so after a kill the audit counts at least the requests the
    provider received and at most the ``interrupted`` ones more."""

    def __call__(self, attempt: Attempt) -> None: ...

    def started(self, start: AttemptStart) -> None: ...


@dataclass(frozen=True)
class ResponsesRequest:
    """A Responses API request forwarded natively: the body as sent (gate has set ``model`` and
    capped ``max_output_tokens`` at ``max_tokens``, the figure the budget projects)."""

    model: str
    body: dict[str, Any]
    max_tokens: int

    def sha256(self) -> str:
        raw = json.dumps(self.body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class ResponsesResult:
    """The provider's ``response`` object, as it sent it, and gate's accounting of it."""

    response_id: str
    body: dict[str, Any]  # the whole ``response`` object
    usage: Usage
    cost_usd: float
    latency_s: float
    http_status: int = 200
    finish_reason: str | None = None  # "stop", "tool_calls" or "length" (read from the output)


@dataclass(frozen=True)
class Capabilities:
    """What a provider declares it speaks (gate.yaml: ``responses_api``, ``unsupported_fields``)."""

    responses_api: bool = False
    unsupported: dict[str, frozenset[str]] = field(default_factory=dict)
    """API (``chat_completions``, ``responses``) -> request fields the provider refuses."""


NO_DECLARATION = Capabilities()


def capabilities(provider: object) -> Capabilities:
    """A provider's declaration (in-process providers declare nothing: chat completions only)."""
    declared = getattr(provider, "capabilities", None)
    return declared if isinstance(declared, Capabilities) else NO_DECLARATION


class Provider(Protocol):
    """Anything that can answer a chat-completions request."""

    name: str

    async def complete(self, request: ChatRequest, on_attempt: AttemptSink) -> ChatResponse:
        """Answer ``request``; report each attempt to ``on_attempt``."""
        ...

    async def aclose(self) -> None:
        """Release connections. A no-op for in-process providers."""
        ...


class ResponsesProvider(Provider, Protocol):
    """A provider that also forwards Responses API requests natively (``capabilities``
    declares ``responses_api``)."""

    async def respond(self, request: ResponsesRequest, on_attempt: AttemptSink
                      ) -> ResponsesResult:
        """Answer ``request`` on ``POST /responses``; report each attempt to ``on_attempt``."""
        ...


__all__ = [
    "BEHAVIOUR_FIELDS", "LOOP_FIELDS", "NO_DECLARATION", "REQUIRED_FIELDS", "RESPONSES_REQUIRED",
    "RETRYABLE", "WITHHOLDABLE", "Attempt", "AttemptSink", "AttemptStart", "Capabilities",
    "ChatRequest", "ChatResponse", "ErrorKind", "Provider", "ProviderError", "ResponsesProvider",
    "ResponsesRequest", "ResponsesResult", "TwoPhaseSink", "Usage", "capabilities",
    "response_format_problem", "tool_choice_problem", "withheld_fields",
]
