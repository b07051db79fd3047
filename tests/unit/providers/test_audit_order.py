"""The audit's ``started`` line is written before the HTTP transport sees the request, and
once per attempt; the outcome line after it, with the same id."""

from __future__ import annotations

import asyncio

import httpx
from provider_support import completion, config, provider, request

from gate.providers.base import Attempt, AttemptStart


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, attempt: Attempt) -> None:
        self.events.append(("outcome " + attempt.outcome, attempt.attempt_id))

    def started(self, start: AttemptStart) -> None:
        self.events.append(("started", start.attempt_id))


def test_started_line_before_the_transport_sees_each_attempt() -> None:
    sink = Sink()
    answers = iter([httpx.Response(500, json={}), httpx.Response(200, json=completion())])

    def transport(req: httpx.Request) -> httpx.Response:
        sink.events.append(("transport", ""))
        return next(answers)

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(transport)) as client:
            await provider(config(), client).complete(request(), sink)

    asyncio.run(go())
    assert [e for e, _ in sink.events] == ["started", "transport", "outcome server_error",
                                           "started", "transport", "outcome ok"]
    ids = [i for e, i in sink.events if e != "transport"]
    assert ids[0] == ids[1] != ids[2] == ids[3]
