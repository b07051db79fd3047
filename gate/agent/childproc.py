"""Starting and ending an agent program: its own process group, a minimal environment, bounded
capture of stdout and stderr, and an end that leaves nothing running (SIGTERM to the whole
group, SIGKILL after a grace period).

The group is in gate's own session, not a new one: Linux shares the CPU out between sessions
first (the scheduler's autogroups), which would make a program's lowered priority (``nice``)
count only against the program itself. A group of its own still keeps the terminal's Ctrl-C
(sent to the foreground group) from reaching it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

GRACE_S = 2.0  # between SIGTERM and SIGKILL
STDOUT_MAX = 1 << 20  # the final answer: first MiB kept
STDERR_TAIL = 4000  # characters of stderr kept for the record
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH",
              "VIRTUAL_ENV", "SSL_CERT_FILE", "SSL_CERT_DIR")
"""Variables taken from gate's own environment; nothing else is (no provider key)."""


def child_environment(extra: Mapping[str, str], parent: Mapping[str, str] | None = None
                      ) -> dict[str, str]:
    """The program's environment: the allowlist from ``parent`` plus ``extra``."""
    parent = os.environ if parent is None else parent
    env = {k: parent[k] for k in PASSED_ENV if k in parent}
    env.update(extra)
    return env


@dataclass
class _Capture:
    limit: int
    keep_tail: bool
    data: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) <= self.limit:
            return
        if self.keep_tail:
            del self.data[: len(self.data) - self.limit]
        else:
            del self.data[self.limit:]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


class Child:
    """A running agent program."""

    def __init__(self, proc: asyncio.subprocess.Process, *, lines: bool = False) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.stdout = _Capture(STDOUT_MAX, keep_tail=lines)
        self.stderr = _Capture(STDERR_TAIL * 4, keep_tail=True)
        self.lines: asyncio.Queue[str] | None = asyncio.Queue() if lines else None
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._readers = [asyncio.create_task(_pump(proc.stdout, self.stdout, self.lines)),
                         asyncio.create_task(_pump(proc.stderr, self.stderr))]

    @classmethod
    async def start(cls, argv: list[str], cwd: Path, env: dict[str, str], *,
                    persistent: bool = False, nice: int = 0) -> Child:
        """Start the program; a persistent one reads trials on stdin and answers in lines.
        ``nice`` > 0 lowers its CPU priority by that much (what it starts inherits it)."""
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env,
            stdin=asyncio.subprocess.PIPE if persistent else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            process_group=0,  # its own process group: ended as a whole
        )
        if nice > 0:
            _lower_priority(proc.pid, nice)
        return cls(proc, lines=persistent)

    async def send(self, line: str) -> bool:
        """Write one line to a persistent program's stdin; False when it is gone."""
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing():
            return False
        try:
            stdin.write(line.encode() + b"\n")
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def stderr_tail(self) -> str:
        return self.stderr.text()[-STDERR_TAIL:]

    async def end(self, grace_s: float = GRACE_S) -> None:
        """Terminate the group, kill it after ``grace_s``, and collect the output."""
        try:
            if self.proc.returncode is None:
                _signal_group(self.pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), grace_s)
        finally:
            _signal_group(self.pid, signal.SIGKILL)  # the leader or whatever it left behind
        await self.proc.wait()
        _, pending = await asyncio.wait(self._readers, timeout=grace_s)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _lower_priority(pid: int, by: int) -> None:
    """A hint to the scheduler: a system that refuses it runs the program as it is."""
    with contextlib.suppress(OSError):
        own = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, pid, min(own + by, 19))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _pump(stream: asyncio.StreamReader, into: _Capture,
                lines: asyncio.Queue[str] | None = None) -> None:
    pending = b""
    while chunk := await stream.read(65536):
        into.add(chunk)
        if lines is None:
            continue
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            lines.put_nowait(line.decode("utf-8", errors="replace"))
        pending = pending[-STDOUT_MAX:]
