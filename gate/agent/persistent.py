"""``agent.mode: persistent``: the program is started once per arm and given its trials as JSON
lines on stdin, one at a time, answering each with one line on stdout.

Each trial line is an object: ``task_id``, ``instruction``, ``system_prompt``, ``base_url``,
``api_key`` (the trial's token), ``model``, ``model_alias``, ``mcp_url``. Everything per trial
stays per trial: the endpoint, the token, the MCP server, the timeout and the accounting. A
program that exits, times out, or is still working when its trial ends (step limit, provider
error, halt) is ended; the next trial starts it again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gate.agent.childproc import Child
from gate.config.schema import AgentProgram

Key = tuple[str, str]  # (arm, the program's configuration)


class ProgramPool:
    """The persistent programs of one run."""

    def __init__(self) -> None:
        self._children: dict[Key, Child] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self.started = 0  # processes started (a figure for tests and benchmarks)

    @staticmethod
    def key(arm: str, program: AgentProgram) -> Key:
        return (arm, program.model_dump_json())

    def lock(self, key: Key) -> asyncio.Lock:
        """Held for a whole trial: one trial at a time per program."""
        return self._locks.setdefault(key, asyncio.Lock())

    async def child(self, key: Key, program: AgentProgram, root: Path,
                    env: dict[str, str]) -> Child:
        """The running program, started when there is none (or it ended)."""
        child = self._children.get(key)
        if child is None or child.returncode is not None:
            if child is not None:
                await child.end()
            child = await Child.start(program.command, root, env, persistent=True)
            self._children[key] = child
            self.started += 1
        return child

    async def discard(self, key: Key) -> None:
        child = self._children.pop(key, None)
        if child is not None:
            await child.end()

    async def aclose(self) -> None:
        """End every program (stdin closed first, so a program may leave on its own)."""
        children, self._children = list(self._children.values()), {}
        for child in children:
            if child.proc.stdin is not None:
                child.proc.stdin.close()
        await asyncio.gather(*(c.end() for c in children))
