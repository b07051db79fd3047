"""``ChatWire``: the chat-completions wire (``POST {base_url}/chat/completions``).

It encodes a ``ChatRequest`` once (``encode``; with ``usage: {include: true}`` so OpenRouter
reports ``usage.cost``, unless the provider declares ``usage`` unsupported), sends it,
classifies the answer (``classify.classify``) and reads a success: the assistant message,
``usage`` (``prompt_tokens``, ``completion_tokens``, ``cost``,
``prompt_tokens_details.cached_tokens``), the response id and ``choices[0].finish_reason``.
No policy: see gate.providers.wire.
"""

from __future__ import annotations

from typing import Any

import httpx

from gate.config.schema import ProviderConfig
from gate.errors import ErrorKind
from gate.providers.base import ChatRequest, Usage
from gate.providers.classify import UNPARSEABLE, classify
from gate.providers.redact import Secret
from gate.providers.wire import (
    Answer,
    BeforeSend,
    HttpPost,
    Outcome,
    WireRequest,
    describe_body,
    failed,
)

Message = dict[str, Any]


class ChatWire:
    """One chat-completions request, one classified outcome."""

    def __init__(self, cfg: ProviderConfig, client: httpx.AsyncClient, *, base_url: str,
                 api_key: Secret | None) -> None:
        self._post = HttpPost(cfg, client, base_url, "chat/completions", api_key)

    @staticmethod
    def encode(request: ChatRequest) -> WireRequest:
        built = request.canonical_json()  # what the audit hashes and the budget estimates
        sent = built if "usage" in request.withheld \
            else built[:-1] + ',"usage":{"include":true}}'  # OpenRouter: report usage.cost
        return WireRequest(
            model=request.model, content=sent.encode(), sha256=request.sha256(),
            prompt_chars=len(built), max_tokens=request.max_tokens,
        )

    async def send(self, request: WireRequest, before_send: BeforeSend | None
                   ) -> Outcome[Message]:
        exchange = await self._post(request.content, before_send)
        kind = classify(exchange.status, exchange.body, exchange.exc)
        if kind is not None:
            return failed(kind, exchange, _describe)
        if exchange.exc is not None:
            raise exchange.exc  # not a transport problem: a bug, never hidden
        body: dict[str, Any] = exchange.body
        usage_raw = body["usage"]
        reported = usage_raw.get("cost")
        usage = Usage(
            prompt_tokens=usage_raw["prompt_tokens"],
            completion_tokens=usage_raw["completion_tokens"],
            cost_reported=float(reported) if reported is not None else None,
            cached_tokens=cached_tokens(usage_raw),
        )
        raw_id = body.get("id")
        response_id = raw_id if isinstance(raw_id, str) else ""
        answer = Answer(body["choices"][0]["message"], response_id, usage, finish_reason(body))
        return Outcome(None, exchange.status, exchange.latency_s, exchange.headers, answer)


def finish_reason(body: dict[str, Any]) -> str | None:
    """``choices[0].finish_reason`` when it is a string."""
    value = body["choices"][0].get("finish_reason")
    return value if isinstance(value, str) else None


def cached_tokens(usage: dict[str, Any]) -> int:
    """``usage.prompt_tokens_details.cached_tokens`` (0 when absent or not a count)."""
    details = usage.get("prompt_tokens_details")
    value = details.get("cached_tokens") if isinstance(details, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, int(usage["prompt_tokens"]))
    return 0


def _describe(kind: ErrorKind, body: Any) -> str:
    if body is not UNPARSEABLE and kind is ErrorKind.MALFORMED_RESPONSE:
        return "response lacks choices[0].message or usage"
    if kind is ErrorKind.FINISH_ERROR:
        return "the provider ended the completion with finish_reason 'error'"
    return describe_body(kind, body)
