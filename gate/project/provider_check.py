"""Checks of each provider's ``unsupported_fields.chat_completions`` against what gate's own
chat completions cannot do without (gate.providers.base): ``model`` and ``messages`` (every
request), ``tools`` (the built-in loop's every call, when the loop runs a task), and a token cap
(``max_tokens``, else ``max_completion_tokens``: the figure the budget projects); and in
``unsupported_fields.responses`` what gate sets on every natively forwarded Responses call
(``model``, ``max_output_tokens``). A chat-completions field gate can do without
(``WITHHOLDABLE``: the seed, the temperature...) is left out of its calls instead."""

from __future__ import annotations

from collections.abc import Iterable

from gate.config.schema import AgentProgram, GateConfig
from gate.providers.base import LOOP_FIELDS, REQUIRED_FIELDS, RESPONSES_REQUIRED

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
        problems += _responses_problems(name, cfg.unsupported_fields.responses)
    return problems


def _responses_problems(name: str, declared: list[str]) -> list[tuple[Loc, str]]:
    """The Responses fields gate sets on every natively forwarded call."""
    where = f"providers.{name}.unsupported_fields.responses"
    return [(("providers", name, "unsupported_fields", "responses", i),
             f"{where}[{i}]: {key!r} cannot be unsupported: gate sets it on every Responses "
             "call it forwards (the arm's model, the cap the budget projects)")
            for i, key in enumerate(declared) if key in RESPONSES_REQUIRED]
