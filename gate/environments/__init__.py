"""Simulated environments, registered by name."""

from __future__ import annotations

from gate.environments.base import Environment, EnvOutcome, ToolResult
from gate.environments.registry import ENVIRONMENTS, register

__all__ = ["ENVIRONMENTS", "EnvOutcome", "Environment", "ToolResult", "register"]


# The built-in environments register themselves (gate.environments.registry) on import.
from gate.environments import incident, orders  # noqa: F401
