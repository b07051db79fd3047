"""``ResponsesWire``: OpenAI's Responses API (``POST {base_url}/responses``), for providers that
declare it (``responses_api: true``).

It sends a ``ResponsesRequest``'s body as it is (never streamed: the recording endpoint streams
the complete answer to the program itself), classifies the answer
(``classify.classify_responses``) and reads a success: the ``response`` object whole, its id,
``usage`` (``input_tokens``, ``output_tokens``, ``input_tokens_details.cached_tokens``, ``cost``
when the provider reports one) and how it finished (``finish_of``). No policy: see
gate.providers.wire.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from gate.config.schema import ProviderConfig
from gate.errors import ErrorKind
from gate.providers.base import ResponsesRequest, Usage
from gate.providers.classify import UNPARSEABLE, classify_responses
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

ResponseObject = dict[str, Any]


class ResponsesWire:
    """One Responses API request, one classified outcome."""

    def __init__(self, cfg: ProviderConfig, client: httpx.AsyncClient, *, base_url: str,
                 api_key: Secret | None) -> None:
        self._post = HttpPost(cfg, client, base_url, "responses", api_key)

    @staticmethod
    def encode(request: ResponsesRequest) -> WireRequest:
        content = json.dumps(request.body, separators=(",", ":")).encode()
        return WireRequest(model=request.model, content=content, sha256=request.sha256(),
                           prompt_chars=len(content), max_tokens=request.max_tokens)

    async def send(self, request: WireRequest, before_send: BeforeSend | None
                   ) -> Outcome[ResponseObject]:
        exchange = await self._post(request.content, before_send)
        kind = classify_responses(exchange.status, exchange.body, exchange.exc)
        if kind is not None:
            return failed(kind, exchange, _describe)
        if exchange.exc is not None:
            raise exchange.exc  # not a transport problem: a bug, never hidden
        body: ResponseObject = exchange.body
        raw = body["usage"]
        reported = raw.get("cost")
        details = raw.get("input_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        usage = Usage(
            prompt_tokens=raw["input_tokens"], completion_tokens=raw["output_tokens"],
            cost_reported=float(reported) if isinstance(reported, int | float) else None,
            cached_tokens=min(cached, raw["input_tokens"])
            if isinstance(cached, int) and not isinstance(cached, bool) and cached > 0 else 0,
        )
        raw_id = body.get("id")
        answer = Answer(body, raw_id if isinstance(raw_id, str) else "", usage, finish_of(body))
        return Outcome(None, exchange.status, exchange.latency_s, exchange.headers, answer)


def finish_of(body: ResponseObject) -> str:
    """How a response ended, in chat-completions words: ``length`` when it stopped at
    ``max_output_tokens``, ``tool_calls`` when it calls a function, else ``stop``."""
    details = body.get("incomplete_details")
    if body.get("status") == "incomplete" and isinstance(details, dict) \
            and details.get("reason") == "max_output_tokens":
        return "length"
    calls = [i for i in body.get("output") or [] if isinstance(i, dict)
             and i.get("type") == "function_call"]
    return "tool_calls" if calls else "stop"


def _describe(kind: ErrorKind, body: Any) -> str:
    if body is not UNPARSEABLE and kind is ErrorKind.MALFORMED_RESPONSE:
        return "response lacks an output list or usage"
    if kind is ErrorKind.FINISH_ERROR:
        return "the provider ended the response with status 'failed'"
    return describe_body(kind, body)
