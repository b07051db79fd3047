"""The provider factory of a run: every provider the run calls, opened by its ``type``.

Every provider, the simulated one included, is reached over HTTP by the same OpenAI-compatible
client (``gate.providers``), so the smoke test and the demo exercise the code that talks to the
real provider. ``type: openai`` is called at its ``base_url``; ``type: mock`` is the simulated
models (``gate.simulate``) served on 127.0.0.1 for the length of the run.

Before the first completion call: every model of the run is priced (an unpriced id fails
closed, exit 4) and the provider's remaining balance lowers the budget ceiling.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from gate.config.schema import FaultConfig
from gate.errors import ConfigError
from gate.project.load import Project
from gate.providers.base import Provider
from gate.providers.budget import Budget
from gate.providers.factory import (
    build_client,
    build_provider,
    fetch_balance,
    prepare_pricing,
    read_api_key,
)
from gate.providers.retry import Notice
from gate.simulate.models import MOCK_PRICES, MockProvider, mock_model_ids
from gate.simulate.server import MockServer, ServerOptions


@dataclass
class ProviderOptions:
    """Knobs the smoke test and tests turn on the simulated provider."""

    payment_required_after: int | None = None  # a 402 after N completion calls
    faults: FaultConfig | None = None  # overrides the mock provider's configured faults
    fault_log: str | None = None  # JSONL of every request the mock server received


def resolve_provider(
    project: Project, model: str, explicit: str | None = None, *, flag: str = "--model"
) -> str:
    """The provider of a model: --provider, else its registry entry, else mock for mock/*.

    An unknown model or provider is a ConfigError naming the flag (``flag`` is the one that
    gave the model) with the closest ids from models.yaml, found before any provider is opened.
    """
    name = explicit or _registered_provider(project, model)
    if explicit and explicit not in project.config.providers:
        raise ConfigError.one("--provider", None, f"unknown provider {explicit!r}; "
                              f"{project.config_path} declares {sorted(project.config.providers)}")
    if name is None and model.startswith("mock/"):
        name = next((n for n, c in project.config.providers.items() if c.type == "mock"), None)
        if name is None:
            raise ConfigError.one(project.config_path, None,
                                  "no provider of type mock is configured for mock/* models")
    if name is None:
        raise ConfigError.one(flag, None, f"model {model!r} is not in "
                              f"{project.config.suite.registry}{_close(project, model)}; "
                              "add it there or pass --provider NAME")
    if project.config.providers[name].type == "mock" and model not in mock_model_ids():
        raise ConfigError.one(flag, None, f"unknown model {model!r}: neither in "
                              f"{project.config.suite.registry} nor a simulated model"
                              f"{_close(project, model)}")
    return name


def _registered_provider(project: Project, model: str) -> str | None:
    return next((e.provider for e in project.registry.models if e.id == model), None)


def _close(project: Project, model: str) -> str:
    """``"; did you mean a, b?"`` from models.yaml and the simulated models, or ``""``."""
    known = sorted({e.id for e in project.registry.models} | set(mock_model_ids()))
    matches = difflib.get_close_matches(model, known, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(matches)}?" if matches else ""


def check_api_keys(project: Project, providers: Iterable[str]) -> None:
    """Every provider's API key is set: said first, before smoke or run-directory checks."""
    for name in sorted(set(providers)):
        read_api_key(name, project.config.providers[name], os.environ,
                     config_path=project.config_path)


@asynccontextmanager
async def open_providers(
    project: Project,
    models: Mapping[str, set[str]],
    *,
    budget: Budget,
    notices: Notice,
    seed: int,
    options: ProviderOptions | None = None,
) -> AsyncIterator[dict[str, Provider]]:
    """Open each provider (name -> the models the run will call on it) for one run."""
    options = options or ProviderOptions()
    opened: dict[str, Provider] = {}
    async with AsyncExitStack() as stack:
        for name in sorted(models):
            cfg = project.config.providers[name]
            base_url = None
            if cfg.type == "mock":
                server = stack.enter_context(_mock_server(project, name, seed, options))
                base_url = server.base_url
            client = await stack.enter_async_context(build_client(cfg))
            provider = build_provider(name, cfg, client, budget=budget, notice=notices,
                                      base_url=base_url, config_path=project.config_path)
            await prepare_pricing(provider, sorted(models[name]))
            await fetch_balance(provider, budget)
            opened[name] = provider
        yield opened


def _mock_server(
    project: Project, name: str, seed: int, options: ProviderOptions
) -> MockServer:
    cfg = project.config.providers[name]
    faults = options.faults or cfg.faults or FaultConfig()
    if options.payment_required_after is not None:
        faults = faults.model_copy(update={"payment_required_after":
                                           options.payment_required_after})
    return MockServer(MockProvider(project, name=name), MOCK_PRICES, faults, seed=seed,
                      fault_log_path=options.fault_log or faults.log,
                      options=ServerOptions(stall_s=cfg.timeout_s + 1.0, retry_after_s=0.01))
