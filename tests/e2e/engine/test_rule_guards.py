"""Tests that guard the rules: each fails when the bug it names is planted (a mutation pass found
that none of these was caught before)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from paths import REPO

from gate.cli import main
from gate.engine import session as sweep_module
from gate.engine.results import compute_results, evidence_of, scope_accounting
from gate.engine.runner import Arm
from gate.engine.sweep import check_smoke
from gate.engine.verify import verify_run
from gate.errors import ConfigError
from gate.project.load import load_project
from gate.providers.budget import Budget
from gate.records import Results, Trial, TrialProviderError
from gate.rundir import RunDir
from gate.rundir.audit import attempts, read_audit
from gate.rundir.jsonl import read_jsonl

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it

PAID = "anthropic/claude-sonnet-4.5"  # an openrouter model of the repository's models.yaml


def _sweep(project_dir: Path, out: Path, *extra: str) -> int:
    return main(["sweep", "--config", str(project_dir / "gate.yaml"), "--out", str(out),
                 "--candidate", "mock/expert@0.9", "--baseline", "mock/expert",
                 "--max-rounds", "1", *extra])


# --- rule 2: smoke before spend, for the same config and files ------------------------------

def _smoke_for(project_dir: Path, smoke_dir: Path) -> list[Arm]:
    project = load_project(project_dir / "gate.yaml")
    smoke_dir.mkdir()
    (smoke_dir / "smoke.json").write_text(json.dumps(
        {"ok": True, "checks": [], "seconds": 1.0, "subset": None,
         "tasks": [{"task": lt.task.id, "expert": None, "random": None}
                   for lt in project.tasks],
         "config_sha256": project.config_sha256, "files_sha256": project.hashes}))
    return [Arm("candidate", PAID, "openrouter", project),
            Arm("baseline", "mock/expert", "mock", project)]


def test_smoke_of_the_same_config_and_files_is_accepted(project_dir: Path,
                                                         tmp_path: Path) -> None:
    arms = _smoke_for(project_dir, tmp_path / "smoke")
    check_smoke(load_project(project_dir / "gate.yaml"), arms, tmp_path / "smoke")


@pytest.mark.parametrize("edit", ["gate.yaml", "fixture", "task"])
def test_smoke_of_a_different_config_or_fixture_is_refused(project_dir: Path, tmp_path: Path,
                                                           edit: str) -> None:
    arms = _smoke_for(project_dir, tmp_path / "smoke")
    target = {"gate.yaml": project_dir / "gate.yaml",
              "fixture": sorted((project_dir / "fixtures").rglob("*.yaml"))[0],
              "task": sorted((project_dir / "tasks").rglob("*.yaml"))[0]}[edit]
    target.write_text(target.read_text() + "\n# changed after the smoke test\n")
    changed = load_project(project_dir / "gate.yaml")
    with pytest.raises(ConfigError, match="the smoke test ran on different config or files"):
        check_smoke(changed, arms, tmp_path / "smoke")


# --- a resumed sweep gets what is left of its ceiling, not the whole ceiling again -----------

def test_resume_ceiling_is_the_original_minus_what_the_audit_log_spent(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "s"
    assert _sweep(project_dir, out, "--budget-usd", "1") in (0, 1, 3)
    audit = attempts(read_jsonl(out / "audit.jsonl"))
    spent = sum(float(a["cost_computed_usd"] or 0.0) for a in audit)
    assert spent > 0
    ceilings: list[float] = []

    class Recording(Budget):
        def __init__(self, ceiling_usd: float, *args: Any, **kwargs: Any) -> None:
            ceilings.append(ceiling_usd)
            super().__init__(ceiling_usd, *args, **kwargs)

    monkeypatch.setattr(sweep_module, "Budget", Recording)
    _sweep(project_dir, out, "--budget-usd", "1", "--resume")
    assert ceilings == [pytest.approx(1.0 - spent)]


# --- rule 4: every planned cell is accounted for, and a lost one is not "done" -----------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished sweep (both arms, every task, one round)."""
    project_dir = tmp_path_factory.mktemp("project")
    for name in ("gate.yaml", "models.yaml", "prompts", "tools", "tasks", "fixtures"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, project_dir / name)
        else:
            shutil.copy2(src, project_dir / name)
    out = project_dir.parent / "s"
    assert _sweep(project_dir, out) in (0, 1, 3)
    return out


def _lose(trial: Trial) -> Trial:
    return trial.model_copy(update={
        "status": "provider_error",
        "provider_error": TrialProviderError(kind="server_error", message="HTTP 503")})


def test_cells_lost_to_the_provider_are_not_counted_done(finished: Path) -> None:
    manifest = RunDir(finished).manifest()
    trials = read_jsonl(finished / "trials.jsonl", Trial)
    trials = [_lose(t) if i < 3 else t for i, t in enumerate(trials)]
    scope = scope_accounting(manifest, trials, decided_round=None, halt=None)
    assert scope.counts.lost_to_provider == 3
    assert scope.counts.done == len(trials) - 3  # every other finished trial
    lost = [c for c in scope.cells_not_done if c.state == "lost_to_provider"]
    assert [c.reason for c in lost] == ["server_error"] * 3


# --- rule 9: provider errors that dominate make a run inconclusive, at exactly the threshold --

def _results(finished: Path, trials: list[Trial], share: float) -> Results:
    audit = read_audit(finished / "audit.jsonl")
    run = RunDir(finished)
    return compute_results(run.manifest(), trials, audit, halt=None,
                           lost_share_inconclusive=share, evidence=evidence_of(run, audit))


def _status_with_lost(finished: Path, n: int, lost: int, share: float) -> Results:
    trials = read_jsonl(finished / "trials.jsonl", Trial)
    assert len(trials) >= n
    trials = [_lose(t) if i < lost else t for i, t in enumerate(trials[:n])]
    return _results(finished, trials, share)


@pytest.mark.parametrize(("n", "lost", "share", "status"), [
    (20, 3, 0.20, "complete"),
    (20, 4, 0.20, "complete"),  # exactly at the threshold: not over it
    (20, 5, 0.20, "inconclusive"),
    (10, 2, 0.20, "complete"),
    (10, 3, 0.20, "inconclusive"),
    (20, 5, 0.25, "complete"),
    (20, 6, 0.25, "inconclusive"),
    (20, 1, 0.0, "inconclusive"),
    (20, 0, 0.0, "complete"),
])
def test_lost_share_threshold(finished: Path, n: int, lost: int, share: float,
                              status: str) -> None:
    results = _status_with_lost(finished, n, lost, share)
    assert results.status == status
    said = any("lost to provider errors" in r for r in results.status_reasons)
    assert said == (status == "inconclusive")


# --- rule 1: a scored trial without a provider response id is never complete ------------------

def test_scored_without_a_response_id_is_said(finished: Path, tmp_path: Path) -> None:
    trials = read_jsonl(finished / "trials.jsonl", Trial)
    assert _results(finished, trials, 0.2).status == "complete"
    trials[0] = trials[0].model_copy(update={"response_ids": []})
    results = _results(finished, trials, 0.2)
    assert results.status == "inconclusive"
    assert "1 scored trial(s) without a provider response id" in results.status_reasons
    # and gate verify names the trial
    run = tmp_path / "run"
    run.mkdir()
    for name in ("manifest.json", "audit.jsonl", "results.json"):
        (run / name).write_bytes((finished / name).read_bytes())
    (run / "trials.jsonl").write_text("".join(json.dumps(t.to_json()) + "\n" for t in trials))
    problems = verify_run(run)
    assert f"trial {trials[0].trial_id}: scored without any provider response id" in problems
