"""The checkpoint's crash-safe JSONL (kill -9 and --resume:
tests/e2e/engine/test_kill_and_resume.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.errors import ConfigError
from gate.records import Heartbeat
from gate.rundir.jsonl import JsonlWriter, read_jsonl


def _hb(n: int) -> Heartbeat:
    return Heartbeat(ts=f"t{n}", calls=n, failed_attempts=0, cost_usd=0.0, trials_done=n)


def test_torn_last_line_is_dropped_and_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.jsonl"
    with JsonlWriter(path, Heartbeat) as w:
        w.write(_hb(1))
        w.write(_hb(2))
    with path.open("a") as fh:
        fh.write('{"ts": "t3", "calls": 3, "fail')  # a crash in the middle of a write
    assert [r.calls for r in read_jsonl(path, Heartbeat)] == [1, 2]
    with JsonlWriter(path, Heartbeat) as w:
        w.write(_hb(3))
    assert [r.calls for r in read_jsonl(path, Heartbeat)] == [1, 2, 3]


def test_corruption_in_the_middle_is_an_error_not_a_skip(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.jsonl"
    good = json.dumps(_hb(1).to_json())
    path.write_text(f"{good}\nnot json\n{good}\n")
    with pytest.raises(ConfigError) as err:
        read_jsonl(path, Heartbeat)
    assert err.value.problems[0].line == 2
