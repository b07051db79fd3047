"""Why a run stopped is on disk (stop.json), so results are derived from the directory alone and
``gate verify`` never takes them from results.json (the run directory's owner and records:
tests/unit/rundir/test_rundir_owner.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import gate.rundir as rundir
from gate.connect import ProviderOptions
from gate.engine.notices import Notices
from gate.engine.run import RunSpec, execute_run
from gate.engine.rundir import derive_results
from gate.engine.verify import verify_run
from gate.project.load import load_project, select_tasks
from gate.rundir import RunDir, as_written, read_results


@pytest.fixture
def halted(project_dir: Path, tmp_path: Path) -> Path:
    """A run halted by an HTTP 402 after three calls, on three tasks."""
    project = load_project(str(project_dir / "gate.yaml"))
    project = select_tasks(project, [lt.task.id for lt in project.tasks[:3]], None)
    out = tmp_path / "halted"
    results = execute_run(project, RunSpec(
        model="mock/expert", provider=None, rounds=1, out=out, seed=7,
        notices=Notices(io.StringIO()), options=ProviderOptions(payment_required_after=3)))
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
