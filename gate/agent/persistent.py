"""``agent.mode: persistent``: the program is started once and given its trials as JSON lines on
stdin, one trial at a time per process, answering each with one line on stdout. An arm keeps up
to ``run.concurrency`` such processes, reused from trial to trial.

Each trial line is an object: ``task_id``, ``instruction``, ``system_prompt``, ``base_url``,
``api_key`` (the trial's token), ``model``, ``model_alias``, ``mcp_url``. Everything per trial
stays per trial: the endpoint, the token, the MCP server, the timeout and the accounting. A
program that exits, times out, or is still working when its trial ends (step limit, provider
error, halt) is ended; a later trial starts another.

Starting is paced, because starting a program mostly means importing its SDKs, work bound by
the CPU, while a process that is already running takes the next trial at almost no cost:

- an arm's first process starts alone; once one has started, at most ``max_starting`` (the
  number of cores) of its processes are starting at once (started, no request through their
  trial's endpoint or MCP server yet): more starts at once than cores finish no sooner, and
  until one start is measured nobody knows whether trials are short enough for one process
  (gate's own start-up work competes for the same cores);
- a trial that finds no idle process waits for one for as long as the arm's last start took
  (from the start to its first request), counted from when it began to wait or a process last
  came up or free, whichever is later: it starts a process only when none came free for that
  long. Short trials (simulated models) thus share one process; long ones (real models) get
  up to ``run.concurrency`` processes, each after one start's wait.

The pool also owns the run's ``TrialServer`` (gate.agent.serve), started with the first
program trial and closed with the pool.

A pool may name background arms (``gate smoke`` names its expert arm, whose run is shorter than
the random arm's it runs beside): their programs, persistent or per trial, run at a lower CPU
priority (``BACKGROUND``), on what the other arms' programs and gate leave. The work is the
same; the longest run is not slowed by a shorter one, so both end nearer together.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gate.agent.childproc import Child
from gate.config.schema import AgentProgram
from gate.errors import HaltError

if TYPE_CHECKING:  # the server stack is imported only when a program runs
    from gate.agent.serve import TrialServer

Key = tuple[str, str]  # (arm, the program's configuration)
BACKGROUND = 10
"""The lowered CPU priority (nice) of a background arm's programs (``ProgramPool.background``)."""


@dataclass
class _Arm:
    """One (arm, program)'s processes."""

    idle: list[Child] = field(default_factory=list)
    early: list[tuple[Child, float]] = field(default_factory=list)  # started ahead (``prestart``)
    nice: int = 0  # how much lower its processes' CPU priority is than gate's
    processes: int = 0  # running: lent or idle
    starting: int = 0
    start_s: float | None = None  # the last start's time to its first request
    freed_at: float = 0.0  # when a process last came up or free (the event loop's clock)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def changed(self) -> None:
        """Wake every trial waiting for a process (each checks again)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, timeout_s: float | None) -> None:
        """Until the next change, or ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)


@dataclass
class Lease:
    """One process lent to one trial; ``keep`` says it answered and may take the next."""

    child: Child
    keep: bool = False
    _arm: _Arm | None = field(default=None, repr=False)  # set while it is starting
    _since: float = 0.0

    @property
    def fresh(self) -> bool:
        """Started for this trial and not yet known to be up."""
        return self._arm is not None

    def started(self) -> None:
        """The process is up: its first request arrived. Another may start."""
        if self._arm is not None:
            self._arm.freed_at = asyncio.get_running_loop().time()
            self._arm.start_s = self._arm.freed_at - self._since
            self._done_starting()

    def _done_starting(self) -> None:
        if self._arm is not None:
            arm, self._arm = self._arm, None
            arm.starting -= 1
            arm.changed()


class ProgramPool:
    """The persistent programs of one run, and the run's trial server."""

    def __init__(self, size: int = 1, max_starting: int | None = None,
                 background: Collection[str] = ()) -> None:
        self.size = size  # processes per (arm, program) at most
        self.max_starting = max(1, max_starting or os.cpu_count() or 1)
        self.background = frozenset(background)  # arms whose programs yield the CPU
        self._arms: dict[Key, _Arm] = {}
        self._running: set[Child] = set()
        self._server: TrialServer | None = None
        self._server_lock = asyncio.Lock()
        self.started = 0  # processes started (a figure for tests and benchmarks)

    @staticmethod
    def key(arm: str, program: AgentProgram) -> Key:
        return (arm, program.model_dump_json())

    def nice(self, arm: str) -> int:
        """How much lower than gate's the CPU priority of ``arm``'s programs is: ``BACKGROUND``
        for a background arm (its programs run on what the others leave), else 0."""
        return BACKGROUND if arm in self.background else 0

    def _arm(self, key: Key) -> _Arm:
        return self._arms.setdefault(key, _Arm(nice=self.nice(key[0])))

    async def server(self) -> TrialServer:
        """The run's trial server, started on first use."""
        from gate.agent.serve import TrialServer

        async with self._server_lock:
            if self._server is None:
                server = TrialServer()
                await server.start()
                self._server = server
            return self._server

    @contextlib.asynccontextmanager
    async def lease(self, key: Key, program: AgentProgram, root: Path, env: dict[str, str],
                    stop: asyncio.Event | None = None) -> AsyncIterator[Lease]:
        """An idle process of this program, or a new one (see the module docstring). Once
        ``stop`` (the run's halt) is set, no process is started: ``HaltError``."""
        arm = self._arm(key)
        lease = await self._acquire(arm, program, root, env, stop)
        try:
            yield lease
        finally:
            lease._done_starting()  # its trial is over: it is no longer starting, up or not
            kept = lease.keep and lease.child.returncode is None
            if kept:
                arm.idle.append(lease.child)
                arm.freed_at = asyncio.get_running_loop().time()
            else:
                arm.processes -= 1
                self._running.discard(lease.child)
            arm.changed()
            if not kept:
                await lease.child.end()

    async def prestart(self, key: Key, program: AgentProgram, root: Path,
                       env: dict[str, str]) -> None:
        """Start one process of ``key`` ahead of its arm's first trial (``gate smoke`` starts
        each arm's before it loads the project): it imports while other work goes on, and the
        first trial takes it. It counts as starting until its first request."""
        arm = self._arm(key)
        if not arm.processes:
            arm.early.append(await self._start(arm, program, root, env))
            arm.changed()

    async def _acquire(self, arm: _Arm, program: AgentProgram, root: Path,
                       env: dict[str, str], stop: asyncio.Event | None) -> Lease:
        loop = asyncio.get_running_loop()
        since = loop.time()
        while arm.early:  # a process started ahead: still starting until its first request
            child, started_at = arm.early.pop()
            if child.returncode is None:
                return Lease(child, _arm=arm, _since=started_at)
            arm.processes -= 1  # it exited before its first trial
            arm.starting -= 1
            self._running.discard(child)
            await child.end()
        while True:
            while arm.idle:
                child = arm.idle.pop()
                if child.returncode is None:
                    return Lease(child)
                arm.processes -= 1  # it exited while idle
                self._running.discard(child)
                await child.end()
            at_once = self.max_starting if arm.start_s is not None else 1
            if arm.processes >= self.size or arm.starting >= at_once:
                await arm.wait(None)  # a process comes free, or a start completes
                continue
            busy = arm.processes - arm.starting  # lent and up: one of them may come free
            patience = None if arm.start_s is None or busy == 0 else \
                max(since, arm.freed_at) + arm.start_s - loop.time()
            if patience is None or patience <= 0:
                break
            await arm.wait(patience)
        if stop is not None and stop.is_set():
            raise HaltError("the run halted before this trial's agent program started")
        child, since = await self._start(arm, program, root, env)
        return Lease(child, _arm=arm, _since=since)

    async def _start(self, arm: _Arm, program: AgentProgram, root: Path,
                     env: dict[str, str]) -> tuple[Child, float]:
        """A new process of ``arm``, counted as starting; with the loop's time it started."""
        arm.processes += 1
        arm.starting += 1
        since = asyncio.get_running_loop().time()
        try:
            child = await Child.start(program.command, root, env, persistent=True,
                                      nice=arm.nice)
        except BaseException:
            arm.processes -= 1
            arm.starting -= 1
            arm.changed()
            raise
        self._running.add(child)
        self.started += 1
        return child, since

    async def aclose(self) -> None:
        """End every program (stdin closed first, so a program may leave on its own), and
        stop the trial server."""
        children, self._running, self._arms = list(self._running), set(), {}
        for child in children:
            if child.proc.stdin is not None:
                child.proc.stdin.close()
        try:
            await asyncio.gather(*(c.end() for c in children))
        finally:
            server, self._server = self._server, None
            if server is not None:
                await server.aclose()

