"""Checks of each provider's ``unsupported_fields.chat_completions`` against what gate's own
chat completions cannot do without (gate.providers.base): ``model`` and ``messages`` (every
request), ``tools`` (the built-in loop's every call, when the loop runs a task), and a token cap
(``max_tokens``, else ``max_completion_tokens``: the figure the budget projects). A field gate
can do without (``WITHHOLDABLE``: the seed, the temperature...) is left out instead."""

from __future__ import annotations

from collections.abc import Iterable

from gate.config.schema import AgentProgram, GateConfig
from gate.providers.base import LOOP_FIELDS, REQUIRED_FIELDS

Loc = tuple[str | int, ...]


def loop_environments(config: GateConfig, environments: Iterable[str]) -> list[str]:
    """The environments among ``environments`` whose trials the built-in loop runs."""
    return sorted({e for e in environments
                   if not isinstance(config.agent_overrides.get(e, config.agent), AgentProgram)})


def provider_field_problems(config: GateConfig, loop_envs: list[str]
                            ) -> list[tuple[Loc, str]]:
    """(location in gate.yaml, message) for each declared field gate cannot leave out;
    ``loop_envs``: the environments the built-in loop runs (``loop_environments``)."""
    problems: list[tuple[Loc, str]] = []
    for name, cfg in sorted(config.providers.items()):
        declared = cfg.unsupported_fields.chat_completions
        loc: Loc = ("providers", name, "unsupported_fields", "chat_completions")
        where = f"providers.{name}.unsupported_fields.chat_completions"
        for i, key in enumerate(declared):
            if key in REQUIRED_FIELDS:
                problems.append(((*loc, i), f"{where}[{i}]: {key!r} cannot be unsupported: "
                                 "every chat completion gate sends carries it"))
            elif key in LOOP_FIELDS and loop_envs:
                problems.append(((*loc, i), f"{where}[{i}]: {key!r} cannot be unsupported: the "
                                 "built-in loop sends it on every call (it runs the tasks of "
                                 f"{', '.join(loop_envs)})"))
        if "max_tokens" in declared and "max_completion_tokens" in declared:
            i = declared.index("max_completion_tokens")
            problems.append(((*loc, i), f"{where}[{i}]: max_tokens and max_completion_tokens "
                             "cannot both be unsupported: the cap run.max_tokens, which the "
                             "budget projects, must reach the provider"))
    return problems
