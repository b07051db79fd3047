"""What one trial's model saw and said, as it happens: the transcript recorder.

The built-in loop and the recording endpoint for agent programs both call ``request`` with the
messages a model call sends and ``answer`` with what came back; tool calls are timed by
``tool``. Each message is kept once: a request that repeats the conversation so far (as every
chat request does) adds only its new messages, and each step records which slice of the
messages it was sent. A program that rewrites its history gets its request kept whole.

The engine turns the recorder into a ``gate.records.Transcript`` (redacted, capped, hashed into
the trial; gate.engine.transcripts). Nothing here touches the disk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _key(message: Mapping[str, Any]) -> str:
    """What identifies a message across requests (clients re-serialise assistant turns with
    other empty fields, so only role, text, tool calls and tool-call id count)."""
    calls = [(str(tc.get("id", "")), str((tc.get("function") or {}).get("name", "")))
             for tc in message.get("tool_calls") or [] if isinstance(tc, Mapping)]
    return json.dumps([message.get("role"), message.get("content") or "",
                       message.get("tool_call_id") or "", calls], sort_keys=True, default=str)


@dataclass
class TranscriptRecorder:
    """One trial's messages, model calls and tool timings (see the module docstring)."""

    clock: Callable[[], float] = time.time  # wall clock, injectable
    messages: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    final_answer: str | None = None
    _seen_from: int = 0

    def request(self, step: int, messages: Sequence[Mapping[str, Any]]) -> None:
        """A model call at ``step`` is sent ``messages`` (the whole conversation it sees)."""
        known = self.messages[self._seen_from:]
        sent = [dict(m) for m in messages]
        if len(sent) >= len(known) and [_key(m) for m in sent[:len(known)]] == [
                _key(m) for m in known]:
            self.messages.extend(sent[len(known):])
        else:  # a rewritten history: kept whole
            self._seen_from = len(self.messages)
            self.messages.extend(sent)
        self.steps.append({"step": step, "seen_from": self._seen_from,
                           "seen_to": len(self.messages), "answer": None,
                           "response_id": None, "finish_reason": None})

    def answer(self, message: Mapping[str, Any], response_id: str | None,
               finish_reason: str | None) -> None:
        """The answer to the last ``request``."""
        self.messages.append(dict(message))
        if self.steps:
            self.steps[-1].update(answer=len(self.messages) - 1, response_id=response_id,
                                  finish_reason=finish_reason)

    def tool(self, step: int, call_id: str, tool: str, started: float, ended: float) -> None:
        """A tool call ran from ``started`` to ``ended`` (the recorder's clock)."""
        self.tool_calls.append({"call_id": call_id, "tool": tool, "step": step,
                                "started": _iso(started),
                                "duration_s": round(max(0.0, ended - started), 6)})

    def tool_result(self, message: Mapping[str, Any]) -> None:
        """A tool result the built-in loop adds to the conversation (the next request holds it
        too; recording it here keeps it when no request follows)."""
        self.messages.append(dict(message))
