"""Simulated environments, registered by name."""

from __future__ import annotations

from gate.environments.base import EnvOutcome, Environment, ToolResult

ENVIRONMENTS: dict[str, type[Environment]] = {}


def register(cls: type[Environment]) -> type[Environment]:
    ENVIRONMENTS[cls.name] = cls
    return cls


def _load_builtin() -> None:
    # Imported here so that each module can ``from gate.environments import register``.
    from gate.environments import incident, orders  # noqa: F401


__all__ = ["ENVIRONMENTS", "EnvOutcome", "Environment", "ToolResult", "register"]
