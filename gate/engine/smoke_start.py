"""``gate smoke`` as the command runs it. When gate.yaml's one agent program (no
``agent_overrides``) is persistent and passes its checks, its process for the random arm, whose
run is the smoke's longest, is started first, before gate imports its engine and loads the
project, and the expert arm's once the project is loaded: starting a program mostly means
importing its SDKs (about 1.5 s of CPU for the example agent), which another core does while
gate gets ready, instead of after, and the two starts do not compete for the cores. A project
that does not load ends them; a program gate.yaml no longer names once loaded is never given a
trial and is ended."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gate.agent.persistent import ProgramPool
from gate.agent.program import prestart_programs
from gate.config.schema import AgentProgram, GateConfig
from gate.engine.loop import in_event_loop
from gate.engine.notices import Notices
from gate.project.load import Project, checked_agents
from gate.rundir import RunDir

if TYPE_CHECKING:
    from gate.records import Smoke

RANDOM = ("random", "mock/random")
"""The arm whose run is the smoke's longest (a random agent mostly walks to the step limit)."""
EXPERT = ("expert", "mock/expert")
"""The arm that solves every task, whose run the breaker's follows."""


def smoke_pool(concurrency: int) -> ProgramPool:
    """The smoke's programs: the expert arm's (its run and the breaker's, shorter than the
    random arm's beside them) run in the background, at a lower CPU priority, so that the
    longest run is not slowed by them (see gate.agent.persistent)."""
    return ProgramPool(concurrency, background={EXPERT[0]})


def smoke_command(config_path: str | Path, load: Callable[[], Project], out: Path, *,
                  seed: int | None) -> Smoke:
    """``load`` the project of ``config_path`` and run the smoke's drill in ``out`` (the seed
    defaults to ``run.seed``), its persistent programs started first where they can be."""
    config = checked_agents(config_path)
    root = Path(config_path).resolve().parent
    return in_event_loop(_smoke(config if _starts_early(config) else None, root, load, out,
                              seed))


def _starts_early(config: GateConfig | None) -> bool:
    """One program runs every task (so it surely runs), in persistent mode."""
    return config is not None and not config.agent_overrides \
        and isinstance(config.agent, AgentProgram) and config.agent.mode == "persistent"


async def _smoke(config: GateConfig | None, root: Path, load: Callable[[], Project], out: Path,
                 seed: int | None) -> Smoke:
    if config is None:
        project, started = _ready(load, out)
        async with contextlib.aclosing(smoke_pool(project.config.run.concurrency)) as programs:
            return await _drill(project, out, seed, started, programs)
    async with contextlib.aclosing(smoke_pool(config.run.concurrency)) as programs:
        # the longest run's process first; the loop reads its pipes while the project loads
        # and, in another thread, the trial server's code is imported (the loading waits on a
        # subprocess, listing the program's distributions, meanwhile)
        await prestart_programs(programs, config, *RANDOM, root)
        (project, started), _ = await asyncio.gather(asyncio.to_thread(_ready, load, out),
                                                     asyncio.to_thread(_import_server))
        await prestart_programs(programs, config, *EXPERT, root)
        return await _drill(project, out, seed, started, programs)


def _ready(load: Callable[[], Project], out: Path) -> tuple[Project, float]:
    """The project loaded, the drill's code imported, the smoke's directory cleared."""
    import gate.engine.smoke  # noqa: F401

    project = load()
    started = time.monotonic()
    RunDir(out).clear_smoke()
    return project, started


def _import_server() -> None:
    import gate.agent.serve  # noqa: F401


async def _drill(project: Project, out: Path, seed: int | None, started: float,
                 programs: ProgramPool) -> Smoke:
    from gate.engine.smoke import drill

    return await drill(project, out, project.config.run.seed if seed is None else seed,
                       Notices(), started, programs)
