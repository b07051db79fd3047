"""The console gets a heartbeat line every heartbeat interval, not only heartbeat.jsonl."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from gate.engine.notices import Notices
from gate.engine.runner import Cell, Engine, EngineOptions
from gate.rundir.jsonl import read_jsonl


def test_every_interval_prints_a_console_line(tmp_path: Path) -> None:
    ticks: list[float] = []

    async def fake_sleep(seconds: float) -> None:  # the clock: three intervals, then stop
        ticks.append(seconds)
        if len(ticks) > 3:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    console = io.StringIO()
    engine = Engine(tmp_path, {}, {}, EngineOptions(
        seed=1, concurrency=1, max_tokens=10, temperature=0.0, heartbeat_interval_s=300.0,
        notices=Notices(console), sleep=fake_sleep))
    engine.counters.calls, engine.counters.cost_usd, engine.counters.trials_done = 7, 0.25, 3
    engine.counters.current = Cell(2, "orders-easy-01", "baseline")
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(engine._heartbeat_loop())
    asyncio.run(engine.aclose())

    lines = [x for x in console.getvalue().splitlines() if x.startswith("[gate] heartbeat:")]
    assert ticks[:3] == [300.0, 300.0, 300.0]
    assert len(lines) == 3  # one per elapsed interval, none at start
    assert lines[0] == ("[gate] heartbeat: 3 trials done, 7 calls, $0.2500, current task "
                        "orders-easy-01 (baseline, round 2)")
    assert len(read_jsonl(tmp_path / "heartbeat.jsonl")) == 4
