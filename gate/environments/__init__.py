"""Environments: the public API for writing one, and gate's built-ins.

Stable API (documented in docs/environments.md): ``Environment`` (subclass it),
``ToolResult`` (what a tool call returns), ``EnvOutcome`` (the judgement of the end state),
and the fixture types an environment reads: ``Fixture`` and ``ToolCall``.

Environments are found by name through one registry (``gate.environments.registry``): gate's
own ``incident`` and ``orders`` and any installed package's through the entry-point group
``gate.environments``, a repository's own through ``environments:`` in gate.yaml. Nothing is
imported until a name is used.
"""

from __future__ import annotations

from gate.config.schema import Fixture, ToolCall
from gate.environments.base import Environment, EnvOutcome, ToolResult

__all__ = ["EnvOutcome", "Environment", "Fixture", "ToolCall", "ToolResult"]
