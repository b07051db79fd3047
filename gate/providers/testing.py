"""Test helpers shipped with the package: a trivial backend and a fake clock.

``EchoBackend`` implements the Provider protocol in-process (so ``MockServer`` can serve it
without the simulated models); ``FakeTime`` gives a clock and a sleep that advances it, so
retry waits, cooldowns and rate limits are checked without waiting.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gate.providers.base import AttemptSink, ChatRequest, ChatResponse, Usage


class EchoBackend:
    """Answers every request with ``echo: <last user message>``; tokens from message sizes."""

    name = "echo"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: ChatRequest, on_attempt: AttemptSink) -> ChatResponse:
        self.calls += 1
        last = str(request.messages[-1].get("content", "")) if request.messages else ""
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in request.messages) // 4 + 1
        message = {"role": "assistant", "content": f"echo: {last}"}
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=len(last) // 4 + 1)
        return ChatResponse(f"echo-{self.calls}", message, usage, 0.0, 0.0)

    async def aclose(self) -> None:
        """Nothing to release."""


@dataclass
class FakeTime:
    """``clock()`` returns fake monotonic time; ``await sleep(s)`` records ``s`` and advances it."""

    now: float = 1000.0
    waits: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)
