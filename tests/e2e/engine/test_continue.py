"""Continuing an inconclusive sweep with more rounds, and reusing baseline trials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.cli import main
from gate.rundir.audit import read_audit
from gate.rundir.jsonl import read_jsonl


def sweep(project_dir: Path, out: Path, *extra: str) -> int:
    return main(["sweep", "--config", str(project_dir / "gate.yaml"), "--out", str(out),
                 *extra])


def log_requests(project_dir: Path, log: Path) -> None:
    """Make the loopback mock server log every completion request it receives."""
    cfg = project_dir / "gate.yaml"
    cfg.write_text(cfg.read_text().replace(
        "    type: mock\n", f"    type: mock\n    faults: {{log: {json.dumps(str(log))}}}\n", 1))


def requests(log: Path) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in read_jsonl(log) if e["event"] == "request"] if log.exists() else []


def test_continuing_adds_rounds_without_repaying(project_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    log_requests(project_dir, log)
    out = tmp_path / "s"
    args = ("--candidate", "mock/expert@0.99", "--baseline", "mock/expert")
    assert sweep(project_dir, out, *args, "--max-rounds", "1") == 3
    first = json.loads((out / "results.json").read_text())
    assert first["verdict"] == "inconclusive"
    trials_before = read_jsonl(out / "trials.jsonl")
    audit_before = read_audit(out / "audit.jsonl")
    paid_before = len(requests(log))
    assert paid_before == len(audit_before)

    sweep(project_dir, out, *args, "--resume", "--max-rounds", "3")

    trials_after = read_jsonl(out / "trials.jsonl")
    assert trials_after[: len(trials_before)] == trials_before  # every paid trial kept
    new_ids = [t["trial_id"] for t in trials_after[len(trials_before):]]
    assert new_ids
    assert not set(new_ids) & {t["trial_id"] for t in trials_before}
    # the provider saw exactly the attempts of the new trials, none of the old ones again
    assert len(requests(log)) - paid_before == len(read_audit(out / "audit.jsonl")) - len(
        audit_before)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scope"]["max_rounds"] == 3
    [cont] = manifest["continuations"]
    assert (cont["max_rounds_from"], cont["max_rounds_to"]) == (1, 3)
    second = json.loads((out / "results.json").read_text())
    assert second["continuations"] == manifest["continuations"]
    assert second["decision"]["rounds"] > first["decision"]["rounds"]
    # the e-process carries on: the first checks are the same numbers, then new ones follow
    def numbers(log: list[dict]) -> list[tuple]:  # type: ignore[type-arg]
        return [(x["pairs"], x["e_reject"], x["e_accept"]) for x in log]
    old_log = first["decision"]["rounds_log"]
    assert numbers(second["decision"]["rounds_log"][: len(old_log)]) == numbers(old_log)
    assert main(["verify", "--run", str(out)]) == 0


def test_a_run_is_never_shortened(project_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    args = ("--candidate", "mock/expert@0.99", "--baseline", "mock/expert")
    sweep(project_dir, out, *args, "--max-rounds", "2")
    assert sweep(project_dir, out, *args, "--resume", "--max-rounds", "1") == 4


def baseline_requests(log: Path, model: str = "mock/expert") -> int:
    return sum(1 for e in requests(log) if e["model"] == model)


def occurrences(run: Path) -> dict[str, tuple[str, int]]:
    """Trial id -> (task, occurrence of the task in the run's plan)."""
    seen: dict[str, int] = {}
    out = {}
    for index, task, _batch in json.loads((run / "manifest.json").read_text())["scope"]["units"]:
        seen[task] = seen.get(task, 0) + 1
        out[f"baseline/{task}/r{index}"] = (task, seen[task])
    return out


def test_second_sweep_reuses_every_baseline_trial(project_dir: Path, tmp_path: Path) -> None:
    """Two runs with different plans (each run draws its own): the second takes the j-th
    baseline trial of each task from the first, whatever position it had in either plan."""
    log = tmp_path / "requests.jsonl"
    log_requests(project_dir, log)
    cache = tmp_path / "cache"
    first = cache / "run1"
    assert sweep(project_dir, first, "--candidate", "mock/expert@0.99", "--baseline",
                 "mock/expert", "--max-rounds", "1", "--plan-salt", "a1") == 3
    paid_baseline = baseline_requests(log)
    assert paid_baseline > 0
    log.unlink()

    out = tmp_path / "second"
    sweep(project_dir, out, "--candidate", "mock/expert@0.9", "--baseline", "mock/expert",
          "--max-rounds", "1", "--reuse-from", str(cache), "--plan-salt", "b2")

    def units(run: Path) -> list[list]:  # type: ignore[type-arg]
        return json.loads((run / "manifest.json").read_text())["scope"]["units"]  # type: ignore[no-any-return]
    assert [u[1] for u in units(out)] != [u[1] for u in units(first)][: len(units(out))]
    r = json.loads((out / "results.json").read_text())
    run1 = json.loads((first / "manifest.json").read_text())["run_id"]
    baseline_trials = [t for t in read_jsonl(out / "trials.jsonl") if t["arm"] == "baseline"]
    old = {occurrences(first)[t["trial_id"]]: t for t in read_jsonl(first / "trials.jsonl")
           if t["arm"] == "baseline"}
    mine = occurrences(out)
    cached = {t["trial_id"] for t in baseline_trials if mine[t["trial_id"]] in old}
    # every baseline trial whose (task, occurrence) the first run holds is taken, the rest paid
    assert {e["trial_id"] for e in r["reuse"]["entries"]} == cached
    assert cached
    assert (baseline_requests(log) > 0) == (len(cached) < len(baseline_trials))
    assert baseline_requests(log, "mock/expert@0.9") > 0
    assert [x["run_id"] for x in r["reuse"]["runs"]] == [run1]
    for t in baseline_trials:
        if t["trial_id"] in cached:
            source = old[mine[t["trial_id"]]]  # the same task and occurrence: the same seed
            assert (t["seed"], t["response_ids"], t["ts"]) == (
                source["seed"], source["response_ids"], source["ts"])
    report = (out / "report.md").read_text()
    assert f"{r['reuse']['trials']} baseline trials reused (not sent to the provider" in report
    assert run1 in report
    assert main(["verify", "--run", str(out)]) == 0


def test_reuse_respects_max_age_and_verify_checks_origin(
        project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "requests.jsonl"
    log_requests(project_dir, log)
    first = tmp_path / "run1"
    args = ("--candidate", "mock/expert@0.99", "--baseline", "mock/expert", "--max-rounds", "1")
    sweep(project_dir, first, *args)
    log.unlink()
    stale = tmp_path / "stale"
    sweep(project_dir, stale, *args, "--reuse-from", str(first), "--reuse-max-age-days", "0")
    assert baseline_requests(log) > 0  # too old: paid again
    assert json.loads((stale / "results.json").read_text())["reuse"] is None

    out = tmp_path / "fresh"
    sweep(project_dir, out, *args, "--reuse-from", str(first))
    assert main(["verify", "--run", str(out)]) == 0
    audit = out / "audit.jsonl"
    lines = audit.read_text().splitlines()
    forged = [line.replace('"reused_from":"', '"reused_from":"x') for line in lines]
    assert forged != lines
    audit.write_text("\n".join(forged) + "\n")
    capsys.readouterr()
    assert main(["verify", "--run", str(out)]) != 0
    assert "not on an audit line copied from that run" in capsys.readouterr().out


def test_the_report_counts_the_candidates_sharing_the_baseline_cache(
        project_dir: Path, tmp_path: Path) -> None:
    """The count comes from the cache's run directories (their manifests), never made up:
    two runs of one candidate and one of another, then a third candidate: 3 candidates."""
    cache = tmp_path / "cache"
    base = ("--baseline", "mock/expert", "--max-rounds", "1")
    for name, candidate in (("a", "mock/expert@0.99"), ("b", "mock/expert@0.99"),
                            ("c", "mock/expert@0.95")):
        sweep(project_dir, cache / name, "--candidate", candidate, *base)
    out = tmp_path / "third"
    sweep(project_dir, out, "--candidate", "mock/expert@0.9", *base, "--reuse-from", str(cache))
    shared = json.loads((out / "manifest.json").read_text())["shared_baseline"]
    assert (len(shared["candidates"]), shared["runs"]) == (3, 3)
    report = (out / "report.md").read_text()
    assert "the baseline cache is shared by **3 candidates**" in report
    assert "the errors come in bunches" in report
    assert main(["verify", "--run", str(out)]) == 0

    alone = tmp_path / "alone"
    sweep(project_dir, alone, "--candidate", "mock/expert@0.99", *base,
          "--reuse-from", str(cache / "a"))
    shared = json.loads((alone / "manifest.json").read_text())["shared_baseline"]
    assert (len(shared["candidates"]), shared["runs"]) == (1, 1)
    assert "the baseline cache has served this candidate only" in (alone / "report.md").read_text()


def test_the_shared_count_is_of_sweeps_with_reusable_trials_and_merged_over_shards(
        project_dir: Path, tmp_path: Path) -> None:
    """CI's cache holds one directory per shard and stage: a sweep counts once (its plan salt),
    never as its own sharer, and only with a baseline trial the run may reuse (not too old);
    the merged run records what every shard found, each in the cache it was given."""
    import shutil

    cache = tmp_path / "cache"
    base = ("--baseline", "mock/expert", "--max-rounds", "1")

    def shard(out: Path, candidate: str, salt: str, i: int, *extra: str, n: int = 2,
              stage: int = 1, stages: int = 1) -> None:
        assert sweep(project_dir, out, "--candidate", candidate, *base, "--plan-salt", salt,
                     "--shard", f"{i}/{n}", "--stage", str(stage), "--stages", str(stages),
                     *extra) == 0

    def shared(out: Path) -> tuple[int, int]:
        record = json.loads((out / "manifest.json").read_text())["shared_baseline"]
        return len(record["candidates"]), record["runs"]

    for i in (1, 2):  # one sweep of another candidate, in two shard directories
        shard(cache / f"aa-{i}", "mock/expert@0.99", "aa", i)
    sweep(project_dir, cache / "stale", "--candidate", "mock/expert@0.95", *base)
    trials = cache / "stale" / "trials.jsonl"  # its trials older than any maximum age
    trials.write_text("".join(json.dumps({**t, "ts": "2020-01-01T00:00:00Z"}) + "\n"
                              for t in read_jsonl(trials)))
    (cache / "empty").mkdir()  # a directory with no trial (a refused shard's)
    manifest = json.loads((cache / "stale" / "manifest.json").read_text())
    manifest["arms"][0]["model"] = "mock/expert@0.5"
    (cache / "empty" / "manifest.json").write_text(json.dumps(manifest))

    bb = ("--reuse-from", str(cache), "--max-rounds", "4")  # a sweep of stages
    shard(tmp_path / "bb-1", "mock/expert@0.99", "bb", 1, *bb, stages=8)
    assert shared(tmp_path / "bb-1") == (1, 1)  # 0.99 (one earlier sweep), this one's too
    # as CI does: this shard joins the cache, and another candidate's sweep too
    shutil.copytree(tmp_path / "bb-1", cache / "bb-1")
    sweep(project_dir, cache / "cc", "--candidate", "mock/expert@0.8", *base)
    shard(tmp_path / "bb-2", "mock/expert@0.99", "bb", 2, *bb, stages=8)
    assert shared(tmp_path / "bb-2") == (2, 2)  # aa and cc; bb-1 is this sweep's own

    run = tmp_path / "run"
    assert main(["merge", "--out", str(run), str(tmp_path / "bb-1"),
                 str(tmp_path / "bb-2")]) == 3  # stage 2 is needed
    assert shared(run) == (2, 2)
    report = (run / "report.md").read_text()
    assert "the baseline cache is shared by **2 candidates**" in report
    assert "2 earlier sweep(s)" in report
    # the next stage's shard finds a third candidate in the cache: the merged run counts it
    sweep(project_dir, cache / "dd", "--candidate", "mock/expert@0.7", *base)
    shard(tmp_path / "bb-s2", "mock/expert@0.99", "bb", 1, *bb, n=1, stage=2, stages=8)
    assert shared(tmp_path / "bb-s2") == (3, 3)
    assert main(["merge", "--out", str(run), str(tmp_path / "bb-s2")]) in (0, 1, 3)
    assert shared(run) == (3, 3)
    assert "the baseline cache is shared by **3 candidates**" in (run / "report.md").read_text()
