"""``agent.mode: persistent``: the program is started once and given its trials as JSON lines on
stdin, one trial at a time per process, answering each with one line on stdout. An arm keeps up
to ``run.concurrency`` such processes (started as trials overlap, then reused).

Each trial line is an object: ``task_id``, ``instruction``, ``system_prompt``, ``base_url``,
``api_key`` (the trial's token), ``model``, ``model_alias``, ``mcp_url``. Everything per trial
stays per trial: the endpoint, the token, the MCP server, the timeout and the accounting. A
program that exits, times out, or is still working when its trial ends (step limit, provider
error, halt) is ended; a later trial starts another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from gate.agent.childproc import Child
from gate.config.schema import AgentProgram

Key = tuple[str, str]  # (arm, the program's configuration)


@dataclass
class Lease:
    """One process lent to one trial; ``keep`` says it answered and may take the next."""

    child: Child
    keep: bool = False


class ProgramPool:
    """The persistent programs of one run."""

    def __init__(self, size: int = 1) -> None:
        self.size = size  # processes per (arm, program) at most
        self._idle: dict[Key, list[Child]] = {}
        self._slots: dict[Key, asyncio.Semaphore] = {}
        self._running: set[Child] = set()
        self.started = 0  # processes started (a figure for tests and benchmarks)

    @staticmethod
    def key(arm: str, program: AgentProgram) -> Key:
        return (arm, program.model_dump_json())

    @contextlib.asynccontextmanager
    async def lease(self, key: Key, program: AgentProgram, root: Path,
                    env: dict[str, str]) -> AsyncIterator[Lease]:
        """An idle process of this program, or a new one while fewer than ``size`` run."""
        async with self._slots.setdefault(key, asyncio.Semaphore(self.size)):
            lease = Lease(await self._idle_or_new(key, program, root, env))
            try:
                yield lease
            finally:
                if lease.keep and lease.child.returncode is None:
                    self._idle[key].append(lease.child)
                else:
                    self._running.discard(lease.child)
                    await lease.child.end()

    async def _idle_or_new(self, key: Key, program: AgentProgram, root: Path,
                           env: dict[str, str]) -> Child:
        idle = self._idle.setdefault(key, [])
        while idle:
            child = idle.pop()
            if child.returncode is None:
                return child
            self._running.discard(child)
            await child.end()
        child = await Child.start(program.command, root, env, persistent=True)
        self._running.add(child)
        self.started += 1
        return child

    async def aclose(self) -> None:
        """End every program (stdin closed first, so a program may leave on its own)."""
        children, self._running, self._idle = list(self._running), set(), {}
        for child in children:
            if child.proc.stdin is not None:
                child.proc.stdin.close()
        await asyncio.gather(*(c.end() for c in children))
