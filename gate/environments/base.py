"""The environment contract (public, stable API): a deterministic, stateful world the agent
acts on through tools. Import it as ``from gate.environments import Environment, ToolResult,
EnvOutcome, Fixture, ToolCall``; docs/environments.md walks through writing one.

What gate does around an environment, so that the class only models the world:

- It builds one instance per trial, ``cls(fixture, seed)``, from a validated ``Fixture``
  (``fixtures/NAME/*.yaml``) and a seed that is the same for both arms of a pair.
- It matches tool implementations to tool files by name: ``tool_names`` must equal the set of
  ``name:`` fields of ``tools/NAME/*.yaml`` (a file without an implementation, or an
  implementation without a file, is invalid). It checks each call's arguments against the
  tool's JSON Schema before ``call`` sees them; a bad call never reaches the environment.
- It counts required evidence and distractor actions from the trace (``fixture``'s
  ``required_evidence`` and ``distractors``); the environment may use them for partial credit.
- The simulated models need no code from the environment: ``mock/expert`` replays the
  fixture's ``reference_trajectory`` and answers ``reference_output``; ``mock/expert@P`` takes a
  ``distractors`` entry (or a random schema-valid call) with probability 1-P per step.
- ``gate validate`` replays every reference trajectory (constructor, each call, ``outcome``,
  ``snapshot``) and requires ``outcome().success``.
- Any exception raised by the environment's own code during a trial makes the trial an
  ``environment_error`` (the harness's fault: counted apart, excluded from success rates);
  during validation it is a problem naming the environment's file and line (exit 4).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from gate.config.schema import Fixture


@dataclass(frozen=True)
class ToolResult:
    """What one tool call returned.

    ``content`` is shown to the model as the tool's result and must be JSON-serializable.
    ``error`` is shown to the model as a tool error (e.g. "no such order"); it is a normal
    result of acting in the world, not an invalid action. ``wrong_fix`` marks a state-changing
    action that is the wrong remedy (restarting a healthy service, refunding the wrong order);
    ``policy_violation`` names a rule the action broke (refund beyond policy). ``invalid``
    names a kind of invalid action the call was (the replay environment's ``unrecorded``):
    ``error`` is shown to the model and the call is counted under that kind, like a
    schema-invalid one, instead of as a valid call.
    """

    content: Any
    error: str | None = None
    wrong_fix: bool = False
    policy_violation: str | None = None
    invalid: str | None = None


@dataclass(frozen=True)
class EnvOutcome:
    """The environment's judgement of its end state (``success`` is what the sweep compares;
    ``reward`` is the partial credit used when ``statistics.score`` is ``reward``)."""

    success: bool  # end state equals the expected one and no policy was violated
    reward: float  # partial credit in [0, 1]; 1.0 when success
    detail: dict[str, Any]  # small, JSON-serializable facts behind the judgement


class Environment(ABC):
    """One simulated world. Subclass it, set ``tool_names``, implement the four methods, and
    declare the class in gate.yaml (``environments: {NAME: "package.module:ClassName"}``) or
    under the entry-point group ``gate.environments``.

    Must be deterministic given ``(fixture, seed)``: use ``seed`` for any randomness, never the
    clock or global state. Exceptions are for bugs only; an action that fails in the world (no
    such ticket) is a ``ToolResult(error=...)``.
    """

    name: ClassVar[str] = ""  # informational; the registered name is the one that counts
    tool_names: ClassVar[frozenset[str]]  # the tools this environment implements
    # True: the environment implements whatever its tool files declare (``tool_names`` is
    # then ignored); for generic worlds such as the built-in ``replay``.
    tools_from_files: ClassVar[bool] = False

    def __init__(self, fixture: Fixture, seed: int) -> None:
        """Build the initial state from ``fixture.initial_state`` (call ``super().__init__``)."""
        self.fixture = fixture
        self.seed = seed

    @classmethod
    @abstractmethod
    def check_fixture(cls, fixture: Fixture) -> list[str]:
        """Environment-specific problems of a fixture (its ``initial_state`` and ``expected``).

        Return one message per problem; a message starting with a dotted path
        (``"expected.status: ..."``) is reported at that path's line in the fixture file.
        """

    @abstractmethod
    def call(self, tool: str, args: dict[str, Any]) -> ToolResult:
        """Execute one schema-valid call of a tool in ``tool_names``, changing state."""

    @abstractmethod
    def outcome(self) -> EnvOutcome:
        """Judge the current state against ``fixture.expected``."""

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """The current state, JSON-serializable (for records and debugging)."""
