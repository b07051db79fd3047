"""`gate sweep`: decisions, scope accounting, pause/resume, verify, status writer."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_helpers import results_of

from gate.cli import main
from gate.records import Trial
from gate.rundir.jsonl import read_jsonl


def gate(*args: str) -> int:
    return main(list(args))


def sweep(project_dir: Path, out: Path, *extra: str) -> int:
    return gate("sweep", "--config", str(project_dir / "gate.yaml"), "--out", str(out), *extra)


def test_regression_is_detected_early(project_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    code = sweep(project_dir, out, "--candidate", "mock/expert@0.8", "--baseline", "mock/expert")
    assert code == 1
    r = results_of(out)
    assert r["verdict"] == "regression"
    assert r["decision"]["e_reject"] >= r["decision"]["threshold_reject"]
    assert r["decision"]["pairs"] < r["decision"]["fixed_sample_pairs"]
    counts = r["scope"]["counts"]
    assert sum(counts.values()) == r["scope"]["planned"]
    assert counts["not_needed"] > 0


@pytest.mark.parametrize("seed", ["1", "2", "3"])
def test_identical_arms_give_no_regression(project_dir: Path, tmp_path: Path, seed: str) -> None:
    out = tmp_path / "s"
    code = sweep(project_dir, out, "--candidate", "mock/expert", "--baseline", "mock/expert",
                 "--seed", seed)
    r = results_of(out)
    assert r["verdict"] == "pass", r["decision"]
    assert code == 0
    assert r["slos"]["met"] is True
    assert r["decision"]["rounds"] < 16


def test_default_baseline_is_the_adopted_model(project_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    sweep(project_dir, out, "--candidate", "mock/expert@0.99", "--max-rounds", "1")
    manifest = json.loads((out / "manifest.json").read_text())
    assert [a["model"] for a in manifest["arms"]] == ["mock/expert@0.99", "mock/expert"]


def test_slo_breach_fails_the_gate(project_dir: Path, tmp_path: Path) -> None:
    cfg = project_dir / "gate.yaml"
    cfg.write_text(cfg.read_text().replace("p95_latency_s_max: 120", "p95_latency_s_max: 0.000001"))
    out = tmp_path / "s"
    code = sweep(project_dir, out, "--candidate", "mock/expert", "--baseline", "mock/expert")
    r = results_of(out)
    assert r["verdict"] == "pass"
    assert r["slos"]["breaches"] == ["p95_latency_s"]
    assert code == 1


def test_round_limit_gives_inconclusive(project_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    code = sweep(project_dir, out, "--candidate", "mock/expert@0.99", "--baseline",
                 "mock/expert", "--max-rounds", "1")
    assert code == 3
    r = results_of(out)
    assert r["verdict"] == "inconclusive"
    assert r["scope"]["counts"]["done"] == r["scope"]["planned"]


def test_pause_then_resume(project_dir: Path, tmp_path: Path) -> None:
    out, pause = tmp_path / "s", tmp_path / "PAUSE"
    pause.touch()
    args = ("--candidate", "mock/expert@0.8", "--baseline", "mock/expert",
            "--pause-file", str(pause))
    assert sweep(project_dir, out, *args) == 2
    r = results_of(out)
    assert r["status"] == "paused"
    assert (out / "PARTIAL-RESULTS.json").exists()
    assert r["scope"]["counts"]["not_run"] == r["scope"]["planned"]
    pause.unlink()
    assert sweep(project_dir, out, *args, "--resume") == 1
    assert not (out / "PARTIAL-RESULTS.json").exists()
    assert results_of(out)["verdict"] == "regression"


def test_resume_refuses_when_a_fixture_changed(project_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    args = ("--candidate", "mock/expert", "--baseline", "mock/expert", "--max-rounds", "1")
    sweep(project_dir, out, *args)
    fixture = sorted((project_dir / "fixtures").rglob("*.yaml"))[0]
    fixture.write_text(fixture.read_text() + "\n# edited\n")
    assert sweep(project_dir, out, *args, "--resume") == 4
    assert fixture.name in capsys.readouterr().err


def test_verify_detects_tampering_and_fabrication(project_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    sweep(project_dir, out, "--candidate", "mock/expert@0.8", "--baseline", "mock/expert")
    assert gate("verify", "--run", str(out)) == 0
    # a number changed in results.json
    path = out / "results.json"
    good = path.read_text()
    r = json.loads(good)
    r["arms"]["candidate"]["successes"] += 1
    path.write_text(json.dumps(r))
    assert gate("verify", "--run", str(out)) == 1
    assert "arms.candidate.successes" in capsys.readouterr().out
    path.write_text(good)
    # a trial whose response id was never audited
    trials = (out / "trials.jsonl").read_text().splitlines()
    first = json.loads(trials[0])
    first["response_ids"] = ["gen-invented"]
    (out / "trials.jsonl").write_text("\n".join([json.dumps(first), *trials[1:]]) + "\n")
    assert gate("verify", "--run", str(out)) == 1
    assert "fabricated" in capsys.readouterr().out


def test_write_status_stops_at_pending_human_review(project_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    sweep(project_dir, out, "--candidate", "mock/expert@0.8", "--baseline", "mock/expert",
          "--write-status")
    text = (project_dir / "models.yaml").read_text()
    run_id = json.loads((out / "manifest.json").read_text())["run_id"]
    entry = text.split("id: mock/expert@0.8", 1)[1].split("- id:", 1)[0]
    assert 'evaluation_status: "pending-human-review"' in entry
    assert f'last_run: "{run_id}"' in entry
    assert text.count("evaluation_status: adopted") == 1


def test_paid_provider_needs_a_matching_smoke(project_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-test-not-used")  # the key is checked first
    code = sweep(project_dir, tmp_path / "s", "--candidate", "anthropic/claude-sonnet-4.5",
                 "--baseline", "mock/expert", "--smoke", str(tmp_path / "nosmoke"))
    assert code == 4
    assert "smoke before spend" in capsys.readouterr().err
    assert not (tmp_path / "s" / "audit.jsonl").exists()


def test_baseline_ref_uses_the_prompts_of_that_ref(project_dir: Path, tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=project_dir, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "base")
    prompt = project_dir / "prompts" / "incident.md"
    prompt.write_text(prompt.read_text() + "\nAlways double-check.\n")
    out = tmp_path / "s"
    sweep(project_dir, out, "--candidate", "mock/expert", "--baseline-ref", "HEAD",
          "--max-rounds", "1")
    manifest = json.loads((out / "manifest.json").read_text())
    arms = {a["name"]: a for a in manifest["arms"]}
    assert arms["baseline"]["model"] == arms["candidate"]["model"] == "mock/expert"
    assert arms["candidate"]["prompts_tools"] == "worktree"
    assert arms["baseline"]["prompts_tools"] != "worktree"
    keys = manifest["files_sha256"]
    base_prompt = next(k for k in keys
                       if k.endswith("prompts/incident.md") and k != "prompts/incident.md")
    assert keys[base_prompt] != keys["prompts/incident.md"]
    trials = read_jsonl(out / "trials.jsonl", Trial)
    assert {t.arm for t in trials} == {"candidate", "baseline"}


def _rounds(project_dir: Path) -> None:
    cfg = project_dir / "gate.yaml"
    text = cfg.read_text()
    assert "  schedule: iid" in text
    cfg.write_text(text.replace("  schedule: iid", "  schedule: rounds", 1))


def test_iid_schedule_decides_on_drawn_units_and_verifies(project_dir: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert sweep(project_dir, out, "--candidate", "mock/expert@0.8",
                 "--baseline", "mock/expert") == 1
    r = results_of(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scope"]["schedule"] == "iid"  # the default
    units = manifest["scope"]["units"]
    assert len(units) == 16 * len(manifest["scope"]["tasks"])
    assert len({task for _, task, _ in units}) > 20  # drawn across the suite
    assert r["verdict"] == "regression"
    # Checked after every pair: the decision rests on the pairs up to the one that crossed;
    # the rest of its batch of 4 ran anyway and is reported, not used.
    run_pairs = r["scope"]["counts"]["done"] // 2
    assert r["decision"]["pairs"] <= run_pairs < r["decision"]["pairs"] + 4
    assert r["decision"]["pairs"] < 40  # sooner than a whole round
    # Task coverage stays visible: each task's paired-trial count, and the report says so.
    counts = [row["pairs"] for row in r["tasks"]]
    assert sum(counts) == run_pairs
    assert min(counts) < max(counts)
    report = (out / "report.md").read_text()
    drawn = [n for n in counts if n]  # a task never drawn has no row, its count is given
    assert f"from {min(drawn)} to {max(drawn)} paired trials per task" in report
    assert f"{counts.count(0)} task(s) were not drawn before the decision" in report
    assert gate("verify", "--run", str(out)) == 0


def test_iid_identical_arms_pass(project_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert sweep(project_dir, out, "--candidate", "mock/expert", "--baseline", "mock/expert") == 0
    assert results_of(out)["verdict"] == "pass"


def test_rounds_schedule_checks_at_round_ends_and_verifies(project_dir: Path,
                                                           tmp_path: Path) -> None:
    _rounds(project_dir)
    out = tmp_path / "s"
    assert sweep(project_dir, out, "--candidate", "mock/expert@0.8",
                 "--baseline", "mock/expert") == 1
    r = results_of(out)
    manifest = json.loads((out / "manifest.json").read_text())
    n_tasks = len(manifest["scope"]["tasks"])
    assert len(manifest["scope"]["units"]) == 16 * n_tasks
    assert r["verdict"] == "regression"
    assert r["decision"]["pairs"] == r["decision"]["rounds"] * n_tasks  # whole rounds only
    assert r["decision"]["rounds"] < r["decision"]["fixed_sample_rounds"]
    assert gate("verify", "--run", str(out)) == 0


def test_verify_rejects_a_response_id_used_twice(project_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    sweep(project_dir, out, "--candidate", "mock/expert", "--baseline", "mock/expert",
          "--max-rounds", "1")
    lines = (out / "audit.jsonl").read_text().splitlines()
    outcomes = [i for i, line in enumerate(lines) if '"phase":"started"' not in line]
    first, second = json.loads(lines[outcomes[0]]), json.loads(lines[outcomes[1]])
    second["response_id"] = first["response_id"]
    lines[outcomes[1]] = json.dumps(second)
    (out / "audit.jsonl").write_text("\n".join(lines) + "\n")
    assert gate("verify", "--run", str(out)) == 1
    assert "appears 2 times" in capsys.readouterr().out
