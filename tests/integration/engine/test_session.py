"""RunSession before any call: the run directory prepared or resumed, the budget's one formula
(the ceiling's share less what the run spent), the manifest written once, the engine's options
(a shard's share of the limits). Reads the repository's project; calls no provider."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from paths import REPO

from gate.engine.rundir import build_manifest
from gate.engine.runner import Arm
from gate.engine.session import RunSession, SessionSpec
from gate.errors import ConfigError, ResumeError
from gate.project.load import Project, load_project
from gate.records import AuditAttempt, BudgetSnapshot, Manifest
from gate.rundir import RunDir


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(str(REPO / "gate.yaml"))


def _spec(project: Project, out: Path, seed: int = 7, **kw: object) -> SessionSpec:
    arm = Arm("run", "mock/expert", "mock", project)

    def manifest(budget: BudgetSnapshot) -> Manifest:
        return build_manifest(project, kind="run", arms=[arm], max_rounds=1, seed=seed,
                              budget=budget, command=["test"])

    spec = SessionSpec(project=project, arms=[arm], out=out, seed=seed, ceiling_usd=2.0,
                       manifest=manifest)
    return dataclasses.replace(spec, **kw)


def _spend(out: Path, usd: float) -> None:
    with RunDir(out).audit_writer() as audit:
        audit.write(AuditAttempt(
            ts="2026-01-01T00:00:00.000Z", arm="run", model="mock/expert", task="t", round=1,
            step=0, attempt=1, request_sha256="0" * 64, outcome="ok", http_status=200,
            response_id="gen-1", tokens_in=1, tokens_out=1, cost_reported_usd=usd,
            cost_computed_usd=usd, latency_s=0.1))


@pytest.mark.parametrize(("shares", "ceiling"), [(1, 2.0), (4, 0.5)])
def test_a_new_run_gets_its_share_of_the_ceiling(project: Project, tmp_path: Path,
                                                 shares: int, ceiling: float) -> None:
    session = RunSession(_spec(project, tmp_path / "out", shares=shares))
    assert session.prepare() is None
    assert session.budget.ceiling_usd == ceiling
    assert session.share_usd == ceiling
    assert (tmp_path / "out").is_dir()


def test_a_resumed_run_gets_its_share_less_what_its_audit_log_spent(
    project: Project, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = RunSession(_spec(project, out, shares=2))
    first.prepare()
    declared = first.declare()
    _spend(out, 0.25)
    again = RunSession(_spec(project, out, shares=2, resumable=True, resume=True))
    assert again.prepare() == declared  # the run's own manifest, not a new one
    assert again.budget.ceiling_usd == pytest.approx(1.0 - 0.25)
    assert again.declare().run_id == declared.run_id


def test_a_resume_with_another_seed_is_refused(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = RunSession(_spec(project, out))
    first.prepare()
    first.declare()
    with pytest.raises(ResumeError, match="changed since the run started: seed"):
        RunSession(_spec(project, out, seed=8, resumable=True, resume=True)).prepare()


@pytest.mark.parametrize(("resumable", "hint"), [
    (False, "choose a new --out"), (True, "pass --resume or a new --out")])
def test_a_directory_holding_a_run_is_refused(project: Project, tmp_path: Path,
                                              resumable: bool, hint: str) -> None:
    out = tmp_path / "out"
    first = RunSession(_spec(project, out))
    first.prepare()
    first.declare()
    with pytest.raises(ConfigError, match=f"already holds a run; {hint}"):
        RunSession(_spec(project, out, resumable=resumable)).prepare()


def test_the_manifest_is_written_once(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "out"
    session = RunSession(_spec(project, out))
    session.prepare()
    run_id = session.declare().run_id
    assert session.declare().run_id == run_id
    assert RunDir(out).manifest().run_id == run_id


def test_a_shard_gets_its_share_of_each_limit(project: Project, tmp_path: Path) -> None:
    cfg = project.config
    whole = RunSession(_spec(project, tmp_path / "a")).engine_options()
    assert whole.concurrency == min(cfg.run.concurrency, cfg.providers["mock"].concurrency)
    quarter = RunSession(_spec(project, tmp_path / "b", shares=4))
    assert quarter.engine_options().concurrency == max(1, min(
        cfg.run.concurrency // 4, cfg.providers["mock"].concurrency // 4))
    limit = quarter.limits.config.providers["mock"].rate_limit
    assert limit.min_interval_s == cfg.providers["mock"].rate_limit.min_interval_s * 4
    assert quarter.limits.config_sha256 == project.config_sha256  # the same file
