"""The run directory has one owner (gate.rundir): no other module names its files; shard.json and
stages.json are typed records; a run without stop.json ran to its end (the halt on disk through
a whole run: tests/e2e/engine/test_rundir.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from paths import PACKAGE

import gate.rundir as rundir
from gate.errors import RecordError
from gate.records import HaltRecord, ShardInfo, ShardSpecRecord, StageRun, Stages
from gate.rundir import RunDir

NAMES = [rundir.MANIFEST, rundir.AUDIT, rundir.TRIALS, rundir.HEARTBEAT, rundir.STOP,
         rundir.RESULTS, rundir.PARTIAL, rundir.SMOKE, rundir.SHARD, rundir.STAGES,
         rundir.REPORT, rundir.TRANSCRIPTS]


def test_only_gate_rundir_names_the_run_directory_files() -> None:
    literal = re.compile("|".join(re.escape(f'"{n}"') for n in NAMES))
    hits = [f"{p.relative_to(PACKAGE)}:{n}" for p in sorted(PACKAGE.rglob("*.py"))
            if "rundir" not in p.relative_to(PACKAGE).parts[:1]
            and "template" not in p.parts
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if literal.search(line)]
    assert hits == []


def test_shard_and_stages_records_round_trip_and_refuse_unknown_fields(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.shard() is None
    assert run.stages() is None
    info = ShardInfo(spec=ShardSpecRecord(index=2, count=3, stage=1, stages=2), units=4,
                     trials=8, spent_usd=0.5, budget_usd=1.0,
                     halt=HaltRecord(kind="paused", reason="pause file", task="t", round=1))
    run.write_shard(info)
    assert run.shard() == info
    stages = Stages(max=2, run=[StageRun(stage=1, shards=3, trials=8, spent_usd=0.5)],
                    next_stage=2, ceiling_usd=3.0, spent_usd=0.5)
    run.write_stages(stages)
    assert run.stages() == stages
    data = json.loads(run.file(rundir.SHARD).read_text())
    run.file(rundir.SHARD).write_text(json.dumps({**data, "surprise": 1}))
    with pytest.raises(RecordError):
        run.shard()


def test_a_run_without_stop_json_ran_to_its_end(tmp_path: Path) -> None:
    stop = RunDir(tmp_path).stop()
    assert stop.halt is None
    assert stop.stopped is None
