"""One run from start to end: open providers, run cells, write results. Shared by
``gate run``, ``gate smoke`` and ``gate sweep``."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gate.config.load import Project
from gate.errors import ConfigError
from gate.providers.base import Provider


@dataclass
class ProviderOptions:
    """Knobs the smoke test and tests turn (fault injection into the mock provider)."""

    payment_required_after: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_provider(project: Project, model: str, explicit: str | None = None) -> str:
    """The provider of a model: --provider, else its registry entry, else mock for mock/*."""
    if explicit:
        if explicit not in project.config.providers:
            raise ConfigError.one(project.config_path, None, f"unknown provider {explicit!r}")
        return explicit
    for entry in project.registry.models:
        if entry.id == model:
            return entry.provider
    if model.startswith("mock/"):
        for name, cfg in project.config.providers.items():
            if cfg.type == "mock":
                return name
        raise ConfigError.one(project.config_path, None,
                              "no provider of type mock is configured for mock/* models")
    raise ConfigError.one(project.config_path, None,
                          f"model {model!r} is not in the registry; pass --provider NAME")


@asynccontextmanager
async def open_providers(
    project: Project,
    names: set[str],
    *,
    options: ProviderOptions | None = None,
    console: TextIO | None = None,
) -> AsyncIterator[dict[str, Provider]]:
    """Open each named provider for one run and close it afterwards."""
    from gate.providers.mock import MockProvider

    options = options or ProviderOptions()
    opened: dict[str, Provider] = {}
    try:
        for name in sorted(names):
            cfg = project.config.providers[name]
            if cfg.type == "mock":
                opened[name] = MockProvider(
                    project, payment_required_after=options.payment_required_after, name=name)
            else:
                raise ConfigError.one(project.config_path, None,
                                      f"provider {name!r}: HTTP providers are not wired yet")
        yield opened
    finally:
        for provider in opened.values():
            await provider.aclose()
