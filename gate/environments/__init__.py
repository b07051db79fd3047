"""Simulated environments, registered by name."""

from __future__ import annotations

from gate.environments.base import Environment, EnvOutcome, ToolResult

ENVIRONMENTS: dict[str, type[Environment]] = {}


def register(cls: type[Environment]) -> type[Environment]:
    ENVIRONMENTS[cls.name] = cls
    return cls


__all__ = ["ENVIRONMENTS", "EnvOutcome", "Environment", "ToolResult", "register"]


# The built-in environments register themselves on import. Imported last, so that each of
# them can ``from gate.environments import register``.
from gate.environments import incident, orders  # noqa: E402, F401
