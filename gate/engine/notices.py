"""The console of a run: ``Notices``, the one reporter of its operational lines."""

from __future__ import annotations

import sys
from typing import TextIO


class Notices:
    """The one console reporter of a run: every operational line goes through it.

    Provider notices (retry waits, cooldowns) and progress are ``[gate] ...`` lines; a halt is
    the ``[CIRCUIT BREAKER] <reason> at task T, round R`` (or ``[PAUSED] ...``) line. All go to
    ``console`` (stderr by default), flushed at once; the last one is kept for the heartbeat.
    """

    def __init__(self, console: TextIO | None = None) -> None:
        self.console = console or sys.stderr
        self.last: str | None = None

    def __call__(self, message: str) -> None:
        """A provider notice or a progress line: ``[gate] message``."""
        self.last = message
        self.line(f"[gate] {message}")

    def halt(self, kind: str, reason: str, task: str, round_no: int) -> None:
        """The halt line of rule 7 (``kind`` is ``circuit_breaker`` or ``paused``)."""
        self.last = reason
        if kind == "circuit_breaker":
            self.line(f"[CIRCUIT BREAKER] {reason} at task {task}, round {round_no}")
        else:
            self.line(f"[PAUSED] {reason} before task {task}, round {round_no}")

    def line(self, text: str) -> None:
        print(text, file=self.console, flush=True)
