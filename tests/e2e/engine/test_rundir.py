"""The run directory has one owner (gate.rundir): no other module names its files; shard.json
and stages.json are typed records; why a run stopped is on disk (stop.json), so results are
derived from the directory alone and ``gate verify`` never takes them from results.json."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from paths import PACKAGE

import gate.rundir as rundir
from gate.connect import ProviderOptions
from gate.engine.run import execute_run
from gate.engine.rundir import derive_results
from gate.engine.session import Notices
from gate.engine.verify import verify_run
from gate.errors import RecordError
from gate.project.load import load_project, select_tasks
from gate.records import HaltRecord, ShardInfo, ShardSpecRecord, StageRun, Stages
from gate.rundir import RunDir, as_written, read_results

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


@pytest.fixture
def halted(project_dir: Path, tmp_path: Path) -> Path:
    """A run halted by an HTTP 402 after three calls, on three tasks."""
    project = load_project(str(project_dir / "gate.yaml"))
    project = select_tasks(project, [lt.task.id for lt in project.tasks[:3]], None)
    out = tmp_path / "halted"
    results = execute_run(project, model="mock/expert", provider=None, rounds=1, out=out,
                          seed=7, notices=Notices(io.StringIO()),
                          options=ProviderOptions(payment_required_after=3))
    assert results.status == "halted"
    return out


def test_the_halt_is_on_disk_and_the_results_derive_from_the_directory(halted: Path) -> None:
    run = RunDir(halted)
    stop = run.stop()
    assert stop.halt is not None
    assert stop.halt.kind == "circuit_breaker"
    stored = read_results(run.file(rundir.PARTIAL))
    assert stored.halt == stop.halt
    assert as_written(derive_results(run)) == stored
    assert verify_run(halted) == []


def test_verify_does_not_take_the_halt_from_the_results_it_checks(halted: Path) -> None:
    """A results file whose halt was rewritten (consistently, everywhere it appears) is
    caught: the halt is derived from stop.json, not read back from the file under check."""
    path = RunDir(halted).file(rundir.PARTIAL)
    data = json.loads(path.read_text())
    data["halt"]["reason"] = "nothing happened here"
    path.write_text(json.dumps(data))
    problems = verify_run(halted)
    assert any("halt.reason" in p for p in problems), problems


def test_a_run_without_stop_json_ran_to_its_end(tmp_path: Path) -> None:
    stop = RunDir(tmp_path).stop()
    assert stop.halt is None
    assert stop.stopped is None
