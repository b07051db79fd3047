"""The registry of environments by name. Built-ins register here the same way as others."""

from __future__ import annotations

from gate.environments.base import Environment

ENVIRONMENTS: dict[str, type[Environment]] = {}


def register(cls: type[Environment]) -> type[Environment]:
    ENVIRONMENTS[cls.name] = cls
    return cls
