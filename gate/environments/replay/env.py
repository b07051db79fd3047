"""``replay``: a production session replayed from what was recorded (built by
``gate import-traces``; docs/traffic.md).

- A call seen in production is answered from the recording: the same tool with the same
  canonical arguments (``null`` = absent) gets the recorded result, or the recorded error.
  When the same call was made several times, the answers come in the recorded order (the last
  one repeats), so a read after a write sees what production saw.
- A call never recorded is answered with a tool error and counted as the invalid action
  ``unrecorded``: the replay cannot know what the real system would have said.
- Calls of the tools listed in ``initial_state.writes`` are graded: each must match one of
  ``expected.writes`` (tool and arguments, each argument under its rule: exact, set,
  ``{tolerance: X}``, ignore), each expected write exactly once; a write that matches none is
  a wrong write (``wrong_fix``) and fails the trial even if the expected writes follow.
- Success: every expected write made, no wrong write, and, for a session that writes
  nothing, every recorded read made (``required_evidence``).

The tools are whatever ``tools/NAME/*.yaml`` declare (``tools_from_files``): one class serves
every imported suite.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar

from pydantic import ValidationError

from gate.config.schema import Fixture, ToolCall
from gate.environments.base import Environment, EnvOutcome, ToolResult
from gate.environments.common import evidence_found, validation_messages
from gate.environments.replay.model import (
    Recorded,
    ReplayExpected,
    ReplayState,
    call_key,
    write_matches,
)

UNRECORDED = "unrecorded"


class ReplayEnvironment(Environment):
    name: ClassVar[str] = "replay"
    tool_names: ClassVar[frozenset[str]] = frozenset()
    tools_from_files: ClassVar[bool] = True

    @classmethod
    def check_fixture(cls, fixture: Fixture) -> list[str]:
        problems: list[str] = []
        try:
            state = ReplayState.model_validate(fixture.initial_state)
        except ValidationError as exc:
            problems += validation_messages("initial_state", exc)
            state = None
        try:
            expected = ReplayExpected.model_validate(fixture.expected)
        except ValidationError as exc:
            problems += validation_messages("expected", exc)
            expected = None
        if state is not None and expected is not None:
            for i, write in enumerate(expected.writes):
                if write.tool not in state.writes:
                    problems.append(f"expected.writes.{i}.tool: {write.tool!r} is not listed "
                                    "in initial_state.writes")
        return problems

    def __init__(self, fixture: Fixture, seed: int) -> None:
        super().__init__(fixture, seed)
        state = ReplayState.model_validate(fixture.initial_state)
        self.expected = ReplayExpected.model_validate(fixture.expected).writes
        self.write_tools = frozenset(state.writes)
        self.answers: dict[str, list[Recorded]] = defaultdict(list)
        for rec in state.recorded:
            self.answers[call_key(rec.tool, rec.args)].append(rec)
        self.served: dict[str, int] = defaultdict(int)
        self.calls: list[ToolCall] = []
        self.matched: list[bool] = [False] * len(self.expected)
        self.wrong_writes: list[dict[str, Any]] = []
        self.unrecorded = 0

    def call(self, tool: str, args: dict[str, Any]) -> ToolResult:
        self.calls.append(ToolCall(tool=tool, args=dict(args)))
        rec = self._recorded(tool, args)
        if tool in self.write_tools:
            if rec is not None and rec.error is not None:  # failed in production: not graded
                return ToolResult(None, error=rec.error)
            wrong = not self._grade_write(tool, args)
            return ToolResult(rec.result if rec else {"status": "done"}, wrong_fix=wrong)
        if rec is None:
            self.unrecorded += 1
            return ToolResult(None, error=f"no recorded answer for {tool} with these "
                              "arguments (production never made this call)",
                              invalid=UNRECORDED)
        return ToolResult(rec.result, error=rec.error)

    def _recorded(self, tool: str, args: dict[str, Any]) -> Recorded | None:
        """The next recorded answer to this call (the last one repeats), if any."""
        key = call_key(tool, args)
        answers = self.answers.get(key)
        if not answers:
            return None
        rec = answers[min(self.served[key], len(answers) - 1)]
        self.served[key] += 1
        return rec

    def _grade_write(self, tool: str, args: dict[str, Any]) -> bool:
        for i, want in enumerate(self.expected):
            if not self.matched[i] and write_matches(want, tool, args):
                self.matched[i] = True
                return True
        self.wrong_writes.append({"tool": tool, "args": dict(args)})
        return False

    def outcome(self) -> EnvOutcome:
        reads = [c for c in self.fixture.required_evidence if c.tool not in self.write_tools]
        found = evidence_found(reads, self.calls)
        read_share = sum(found) / len(found) if found else 1.0
        write_share = sum(self.matched) / len(self.matched) if self.matched else 1.0
        writes_ok = all(self.matched) and not self.wrong_writes
        success = writes_ok and (bool(self.expected) or all(found))
        reward = 1.0 if success else min(0.95, 0.3 * read_share + 0.7 * write_share)
        if self.wrong_writes and not success:
            reward /= 2
        detail = {"expected_writes": len(self.expected), "matched_writes": sum(self.matched),
                  "wrong_writes": len(self.wrong_writes), "reads_seen": sum(found),
                  "reads": len(found), "unrecorded_calls": self.unrecorded}
        return EnvOutcome(success, round(reward, 4), detail)

    def snapshot(self) -> dict[str, Any]:
        return {"writes": [c.model_dump() for c in self.calls if c.tool in self.write_tools],
                "wrong_writes": self.wrong_writes, "unrecorded_calls": self.unrecorded}
