"""The environment contract: a deterministic, stateful world the agent acts on through tools.

An environment is built from a validated ``Fixture`` and a seed, executes tool calls whose
arguments already passed the tool's JSON Schema, and judges the *end state* (never the wording
of the agent's final answer).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from gate.config.schema import Fixture


@dataclass(frozen=True)
class ToolResult:
    """What one tool call returned.

    ``error`` is shown to the model as a tool error (e.g. "no such order"); it is a normal
    result of acting in the world, not an invalid action. ``wrong_fix`` marks a state-changing
    action that is the wrong remedy (restarting a healthy service, refunding the wrong order);
    ``policy_violation`` names a rule the action broke (refund beyond policy).
    """

    content: Any
    error: str | None = None
    wrong_fix: bool = False
    policy_violation: str | None = None


@dataclass(frozen=True)
class EnvOutcome:
    """The environment's judgement of its end state."""

    success: bool  # end state equals the expected one and no policy was violated
    reward: float  # partial credit in [0, 1]; 1.0 when success
    detail: dict[str, Any]  # small, JSON-serializable facts behind the judgement


class Environment(ABC):
    """One simulated world. Subclasses are registered in ``gate.environments.ENVIRONMENTS``."""

    name: ClassVar[str]
    tool_names: ClassVar[frozenset[str]]  # the tools this environment implements

    def __init__(self, fixture: Fixture, seed: int) -> None:
        self.fixture = fixture
        self.seed = seed

    @classmethod
    @abstractmethod
    def check_fixture(cls, fixture: Fixture) -> list[str]:
        """Environment-specific problems of a fixture (its initial_state and expected)."""

    @abstractmethod
    def call(self, tool: str, args: dict[str, Any]) -> ToolResult:
        """Execute one schema-valid tool call, changing state as the tool says."""

    @abstractmethod
    def outcome(self) -> EnvOutcome:
        """Judge the current state against ``fixture.expected``."""

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """The current state, JSON-serializable (for records and debugging)."""
