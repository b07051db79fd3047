"""The process's one event loop (``in_event_loop``): a run's, or every run of ``gate smoke``
together (so they can share persistent agent programs). A module of its own, light to import,
so that ``gate smoke`` can start its programs before it imports the rest of the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TypeVar

T = TypeVar("T")


def in_event_loop(work: Coroutine[object, object, T]) -> T:
    """Run ``work`` in the process's one event loop; gate calls ``asyncio.run`` nowhere else."""
    return asyncio.run(work)
