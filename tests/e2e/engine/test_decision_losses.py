"""Losses in the decision: a loss the arm caused (a 400 such as a context overflow,
``response_too_large``, an agent program that made no model call) is that arm's failed trial;
a loss that is the provider's (5xx, 429, timeouts after retries) leaves the pair out, and the
run is flagged when one arm loses more pairs than chance allows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from paths import copy_project

from gate.cli import main
from gate.engine.decision import batch_pairs, binomial_two_sided, loss_imbalance
from gate.engine.plan import units_of
from gate.engine.results import compute_results, evidence_of
from gate.engine.verdict import sweep_decision
from gate.records import Manifest, Results, Trial, TrialProviderError
from gate.rundir import RunDir
from gate.rundir.audit import read_audit
from gate.rundir.jsonl import read_jsonl

pytestmark = pytest.mark.slow  # a sweep on a copy of the project (the module's fixture)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One round of a sweep of two identical arms (every trial succeeds)."""
    root = tmp_path_factory.mktemp("losses")
    project = copy_project(root / "project")
    out = root / "run"
    main(["sweep", "--config", str(project / "gate.yaml"), "--candidate", "mock/expert",
          "--baseline", "mock/expert", "--max-rounds", "1", "--plan-salt", "10", "--out",
          str(out)])
    return out


def lose(trial: Trial, kind: str) -> Trial:
    """The trial as it would be recorded had it been lost with ``kind``."""
    if kind == "no_model_call":
        return Trial(**{**head(trial), "status": "no_model_call"})
    return Trial(**{**head(trial), "status": "provider_error",
                    "provider_error": TrialProviderError(kind=kind, message="simulated")})


def head(trial: Trial) -> dict:  # type: ignore[type-arg]
    keep = ("trial_id", "arm", "model", "task", "round", "seed", "ts", "wall_s", "trace_id")
    return {k: getattr(trial, k) for k in keep}


def with_losses(run: Path, arm: str, kind: str, units: int) -> tuple[Manifest, list[Trial]]:
    manifest = RunDir(run).manifest()
    trials = read_jsonl(run / "trials.jsonl", Trial)
    hit = {u.trial_id(arm) for u in units_of(manifest.scope)[:units]}
    return manifest, [lose(t, kind) if t.trial_id in hit else t for t in trials]


def results(run: Path, manifest: Manifest, trials: list[Trial]) -> Results:
    decision, verdict = sweep_decision(manifest, trials, None)
    audit = read_audit(run / "audit.jsonl")
    return compute_results(manifest, trials, audit, halt=None,
                           lost_share_inconclusive=manifest.run.lost_share_inconclusive,
                           evidence=evidence_of(RunDir(run), audit), decision=decision,
                           verdict=verdict, slo_config=manifest.slos)


@pytest.mark.parametrize("kind", ["bad_request", "response_too_large", "no_model_call"])
def test_an_arm_caused_loss_is_that_arms_failure(run: Path, kind: str) -> None:
    manifest, trials = with_losses(run, "candidate", kind, 6)
    by_id = {t.trial_id: t for t in trials}
    units = units_of(manifest.scope)
    diffs, finished = batch_pairs(by_id, units[:6], "success")
    assert finished
    assert diffs == [-1.0] * 6
    # a candidate whose every request is refused is a regression, not an inconclusive run
    manifest, trials = with_losses(run, "candidate", kind, len(units))
    r = results(run, manifest, trials)
    assert r.verdict == "regression"
    # the same losses on the baseline can only hurt the baseline
    manifest, trials = with_losses(run, "baseline", kind, 6)
    diffs, _ = batch_pairs({t.trial_id: t for t in trials}, units[:6], "success")
    assert diffs == [1.0] * 6


@pytest.mark.parametrize("kind", ["server_error", "rate_limited", "timeout"])
def test_a_provider_loss_leaves_the_pair_out(run: Path, kind: str) -> None:
    manifest, trials = with_losses(run, "candidate", kind, 6)
    diffs, finished = batch_pairs({t.trial_id: t for t in trials},
                                  units_of(manifest.scope)[:6], "success")
    assert finished
    assert diffs == []


def test_one_sided_provider_losses_flag_the_run(run: Path) -> None:
    manifest, trials = with_losses(run, "candidate", "server_error", 8)
    units = units_of(manifest.scope)
    reason = loss_imbalance(trials, units, "success")
    assert reason is not None
    assert "candidate alone 8, baseline alone 0" in reason
    r = results(run, manifest, trials)
    assert r.status == "inconclusive"
    assert reason in r.status_reasons
    # 8 losses that fall on the two arms alike (4 each) are chance: no flag
    half = {u.trial_id("candidate") for u in units[:4]} | {u.trial_id("baseline")
                                                             for u in units[4:8]}
    even = [lose(t, "server_error") if t.trial_id in half else t
            for t in read_jsonl(run / "trials.jsonl", Trial)]
    assert loss_imbalance(even, units, "success") is None


def test_binomial_two_sided() -> None:
    assert binomial_two_sided(0, 0) == 1.0
    assert binomial_two_sided(0, 8) == pytest.approx(2 / 256)
    assert binomial_two_sided(8, 8) == pytest.approx(2 / 256)
    assert binomial_two_sided(3, 6) == 1.0
    assert binomial_two_sided(1, 10) == pytest.approx(2 * 11 / 1024)
    assert binomial_two_sided(2000, 5000) < 1e-40  # big n: exact integers, no overflow


def test_stored_results_of_the_run_verify(run: Path) -> None:
    assert json.loads((run / "results.json").read_text())["verdict"] is not None
    assert main(["verify", "--run", str(run)]) == 0
