"""One ledger per comparison: a comparison already decided is reported, not run afresh with a
new plan; an undecided one is to be continued; a forced restart is recorded and shown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hostile_corpus import assert_inert

from gate.cli import main
from gate.engine.ledger import ordinal
from gate.report.blocks import parse_report
from gate.rundir.jsonl import read_jsonl

ARMS = ("--candidate", "mock/expert@0.5", "--baseline", "mock/expert")


def sweep(project_dir: Path, out: Path, ledger: Path, *extra: str) -> int:
    return main(["sweep", "--config", str(project_dir / "gate.yaml"), *ARMS, "--out", str(out),
                 "--ledger", str(ledger), *extra])


def assert_reports_earlier(out: Path, run_id: str, word: str, runs: int,
                           earlier_report: Path | None = None) -> str:
    """The refused command's --out holds earlier-run.json and a report.md in gate's form (a
    summary row and a verdict block) naming the earlier run, its verdict word and how to run
    it again; its required check follows the exit code (1: failed). The report's text."""
    record = json.loads((out / "earlier-run.json").read_text())
    assert (record["run_id"], record["runs"]) == (run_id, runs)
    text = (out / "report.md").read_text()
    report = parse_report(text)
    assert report.row[1] == f"**{word}**"
    assert [b.kind for b in report.blocks] == ["verdict"]
    assert f"decided by an earlier run, `{run_id}` in `{record['out']}`: **{word}**" in text
    assert f"holds {runs} run{'s' if runs != 1 else ''} of this comparison" in text
    assert "`gate:restart` label" in text
    assert "`--force-restart`" in text
    check = "passed" if word == "Pass" else "failed"
    assert f"(required check `gate` {check})" in text
    if earlier_report is None:
        assert "full report" not in text
    else:
        assert f"The earlier run's full report: `{earlier_report}`." in text
    return text


def test_a_decided_comparison_is_reported_and_a_restart_recorded(
        project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "runs" / "ledger.jsonl"
    assert sweep(project_dir, tmp_path / "a", ledger) == 1  # a clear regression
    first = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert first["comparison"]["number"] == 1
    capsys.readouterr()
    # the same comparison again, with a new plan: the earlier verdict stands, nothing is run
    assert sweep(project_dir, tmp_path / "b", ledger) == 1
    assert first["run_id"] in capsys.readouterr().err
    assert not (tmp_path / "b" / "manifest.json").exists()
    # ... and reported in its --out: the PR comment names the earlier run, not "No result"
    assert_reports_earlier(tmp_path / "b", first["run_id"], "Regression", runs=1,
                           earlier_report=tmp_path / "a" / "report.md")
    # a forced restart runs (here in the refused directory), and says which run it is
    sweep(project_dir, tmp_path / "b", ledger, "--force-restart")
    assert not (tmp_path / "b" / "earlier-run.json").exists()  # no refusal stands beside it
    assert "decided by an earlier run" not in (tmp_path / "b" / "report.md").read_text()
    third = json.loads((tmp_path / "b" / "manifest.json").read_text())["comparison"]
    assert (third["number"], third["previous"], third["forced"]) == (2, [first["run_id"]], True)
    sweep(project_dir, tmp_path / "d", ledger, "--force-restart")
    report = (tmp_path / "d" / "report.md").read_text()
    assert "**3rd run of this comparison**" in report
    assert main(["verify", "--run", str(tmp_path / "d")]) == 0
    # another comparison (another candidate) is not held back by this one
    assert main(["sweep", "--config", str(project_dir / "gate.yaml"), "--candidate",
                 "mock/expert@0.6", "--baseline", "mock/expert", "--out", str(tmp_path / "e"),
                 "--ledger", str(ledger)]) == 1


def test_an_undecided_comparison_is_continued_not_restarted(
        project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "ledger.jsonl"
    args = ("--candidate", "mock/expert@0.99", "--baseline", "mock/expert", "--max-rounds", "1")
    base = ["sweep", "--config", str(project_dir / "gate.yaml"), *args, "--ledger", str(ledger)]
    assert main([*base, "--out", str(tmp_path / "a")]) == 3
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "b")]) == 4
    assert "--resume" in capsys.readouterr().err
    # continuing the run itself is what the ledger asks for
    assert main([*base[:-4], "--max-rounds", "2", "--ledger", str(ledger), "--out",
                 str(tmp_path / "a"), "--resume"]) in (0, 1, 3)


def test_ordinal() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]


def shard_and_merge(project_dir: Path, tmp: Path, name: str, ledger: Path,
                    *extra: str) -> int:
    """One stage of one shard, then the decision job's ``gate merge --ledger``, as CI runs it."""
    shard = tmp / f"{name}-shard"
    assert main(["sweep", "--config", str(project_dir / "gate.yaml"), *ARMS, "--shard", "1/1",
                 "--stage", "1", "--stages", "4", "--plan-salt", f"5a{len(name)}",
                 "--out", str(shard)]) == 0
    return main(["merge", "--out", str(tmp / name), str(shard), "--ledger", str(ledger),
                 *extra])


def test_the_decision_job_keeps_the_ledger_of_sharded_sweeps(
        project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In CI the run directory may be lost (a new cache key, eviction) while the PR's ledger
    is kept: a new merged run of a decided comparison reports the earlier verdict."""
    ledger = tmp_path / "ledger" / "comparisons.jsonl"
    assert shard_and_merge(project_dir, tmp_path, "a", ledger) == 1  # a clear regression
    first = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert first["comparison"]["number"] == 1
    lines = [json.loads(x) for x in ledger.read_text().splitlines()]
    assert [(x["run_id"], x["verdict"]) for x in lines] == [(first["run_id"], "regression")]
    assert main(["verify", "--run", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    # the same comparison, a new plan, the run directory gone: the earlier verdict stands
    shutil.rmtree(tmp_path / "a")  # as in CI: the run directories' cache is gone
    assert shard_and_merge(project_dir, tmp_path, "bb", ledger) == 1
    assert first["run_id"] in capsys.readouterr().err
    assert not (tmp_path / "bb" / "manifest.json").exists()
    assert_reports_earlier(tmp_path / "bb", first["run_id"], "Regression", runs=1)
    # a forced restart merges, recorded and shown
    shard_and_merge(project_dir, tmp_path, "ccc", ledger, "--force-restart")
    third = json.loads((tmp_path / "ccc" / "manifest.json").read_text())["comparison"]
    assert (third["number"], third["previous"], third["forced"]) == (2, [first["run_id"]], True)
    assert "**2nd run of this comparison**" in (tmp_path / "ccc" / "report.md").read_text()


# --- a shard reads the ledger before any call, and never writes it --------------------------


def shard(project_dir: Path, out: Path, ledger: Path, salt: str, *extra: str,
          arms: tuple[str, ...] = ARMS, stage: int = 1) -> int:
    """One shard of a sweep, as the workflow's sweep job runs it (with the PR's ledger)."""
    return main(["sweep", "--config", str(project_dir / "gate.yaml"), *arms, "--shard", "1/1",
                 "--stage", str(stage), "--stages", "4", "--plan-salt", salt,
                 "--out", str(out), "--ledger", str(ledger), *extra])


def log_requests(project_dir: Path) -> Path:
    """Make the loopback mock server log every request it receives; the log's path."""
    log = project_dir.parent / "requests.jsonl"
    cfg = project_dir / "gate.yaml"
    cfg.write_text(cfg.read_text().replace(
        "    type: mock\n", f"    type: mock\n    faults: {{log: {json.dumps(str(log))}}}\n", 1))
    return log


def requests(log: Path) -> int:
    return len(read_jsonl(log)) if log.exists() else 0


def ran_nothing(out: Path) -> bool:
    """No call and no trial: the shard stopped before its providers were opened."""
    held = json.loads((out / "shard.json").read_text())
    return (not (out / "audit.jsonl").exists() and not (out / "trials.jsonl").exists()
            and held["trials"] is None)


def test_a_shard_of_a_decided_comparison_runs_nothing_and_the_merge_reports_it(
        project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = log_requests(project_dir)
    ledger = tmp_path / "ledger" / "comparisons.jsonl"
    assert shard_and_merge(project_dir, tmp_path, "a", ledger) == 1  # a clear regression
    first = json.loads((tmp_path / "a" / "manifest.json").read_text())
    held, sent = ledger.read_bytes(), requests(log)
    assert sent > 0
    capsys.readouterr()
    # the same comparison, a new plan: the earlier verdict and its exit code stand, no call
    assert shard(project_dir, tmp_path / "b", ledger, "b0") == 1
    assert first["run_id"] in capsys.readouterr().err
    assert ran_nothing(tmp_path / "b")
    earlier = tmp_path / "a" / "report.md"
    assert_reports_earlier(tmp_path / "b", first["run_id"], "Regression", 1, earlier)
    assert requests(log) == sent  # the provider heard nothing
    assert ledger.read_bytes() == held  # a shard never writes the ledger
    # its resumed directory (the workflow's cache) is refused the same way
    assert shard(project_dir, tmp_path / "b", ledger, "b0", "--resume") == 1
    assert ran_nothing(tmp_path / "b")
    assert requests(log) == sent
    # the decision job's merge reports the same verdict, and merges nothing
    assert main(["merge", "--out", str(tmp_path / "bm"), str(tmp_path / "b"),
                 "--ledger", str(ledger)]) == 1
    assert not (tmp_path / "bm" / "manifest.json").exists()
    assert_reports_earlier(tmp_path / "bm", first["run_id"], "Regression", 1, earlier)
    assert ledger.read_bytes() == held
    # --force-restart runs the shard (still no ledger line); the merge records the new run
    assert shard(project_dir, tmp_path / "c", ledger, "c0", "--force-restart") == 0
    assert (tmp_path / "c" / "audit.jsonl").exists()
    assert requests(log) > sent
    assert ledger.read_bytes() == held
    assert main(["merge", "--out", str(tmp_path / "cm"), str(tmp_path / "c"),
                 "--ledger", str(ledger), "--force-restart"]) == 1
    again = json.loads((tmp_path / "cm" / "manifest.json").read_text())["comparison"]
    assert (again["number"], again["previous"], again["forced"]) == (2, [first["run_id"]], True)


def test_a_shard_of_an_undecided_comparison_is_refused_unless_it_continues_that_run(
        project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "ledger.jsonl"
    arms = ("--candidate", "mock/expert@0.99", "--baseline", "mock/expert")
    assert shard(project_dir, tmp_path / "s1", ledger, "a1", arms=arms) == 0
    # stage 1 of 4 leaves the sweep undecided: the merge records it, exit 3
    assert main(["merge", "--out", str(tmp_path / "run"), str(tmp_path / "s1"),
                 "--ledger", str(ledger)]) == 3
    held = ledger.read_bytes()
    capsys.readouterr()
    # a new run of the comparison (another plan) is refused before any call: continue it
    assert shard(project_dir, tmp_path / "new", ledger, "b2", arms=arms) == 4
    assert "--resume" in capsys.readouterr().err
    assert ran_nothing(tmp_path / "new")
    assert ledger.read_bytes() == held
    # the next stage of the run the ledger holds (its plan salt) continues it
    assert shard(project_dir, tmp_path / "s2", ledger, "a1", arms=arms, stage=2) == 0
    assert (tmp_path / "s2" / "trials.jsonl").exists()
    assert ledger.read_bytes() == held
    assert main(["merge", "--out", str(tmp_path / "run"), str(tmp_path / "s2"),
                 "--ledger", str(ledger)]) in (0, 1, 3)


def test_a_pass_with_an_slo_breached_keeps_its_exit_code(
        project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The earlier run's exit code stands, not only its verdict: a pass that breached an SLO
    exited 1, and so do a new sweep and a shard of that comparison."""
    cfg = project_dir / "gate.yaml"
    cfg.write_text(cfg.read_text().replace("p95_latency_s_max: 120",
                                           "p95_latency_s_max: 0.000001"))
    ledger = tmp_path / "ledger.jsonl"
    same = ("--candidate", "mock/expert", "--baseline", "mock/expert")
    base = ["sweep", "--config", str(cfg), *same, "--ledger", str(ledger)]
    assert main([*base, "--out", str(tmp_path / "a")]) == 1
    assert json.loads((tmp_path / "a" / "results.json").read_text())["verdict"] == "pass"
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "b")]) == 1
    assert "SLO" in capsys.readouterr().err
    run_id = json.loads((tmp_path / "a" / "manifest.json").read_text())["run_id"]
    text = assert_reports_earlier(tmp_path / "b", run_id, "SLO breach", 1,
                                  tmp_path / "a" / "report.md")
    assert "an SLO of the candidate not met" in text
    assert shard(project_dir, tmp_path / "c", ledger, "c1", arms=same) == 1
    assert ran_nothing(tmp_path / "c")


HOSTILE_DIR = ("x --> <img src=x onerror=alert(1)> [approve](http:/evil.example) @octocat "
               "`tick` | cell <!-- gate:fold --> $\\color{red}{PASS}$")


def test_a_hostile_run_id_and_directory_stay_inert_in_the_report(
        project_dir: Path, tmp_path: Path) -> None:
    """The ledger is read from a cache a PR's earlier runs wrote: its run id and directory are
    untrusted, and reach report.md (and the PR comment) only neutralised."""
    ledger = tmp_path / "ledger.jsonl"
    earlier = tmp_path / HOSTILE_DIR
    assert sweep(project_dir, earlier, ledger) == 1
    hostile_id = "r1 <script>alert(1)</script> [x](https://evil.example/x) @acme/core \u202e"
    line = json.loads(ledger.read_text().splitlines()[-1])
    ledger.write_text(json.dumps({**line, "run_id": hostile_id}) + "\n")
    assert sweep(project_dir, tmp_path / "b", ledger) == 1
    text = (tmp_path / "b" / "report.md").read_text()
    report = parse_report(text)
    assert (report.alert, report.row[1]) == ("CAUTION", "**Regression**")
    assert [b.kind for b in report.blocks] == ["verdict"]  # no block opened from outside
    assert_inert(text)
    assert "decided by an earlier run, `r1" in text
    assert "full report" not in text  # that directory holds another run (its own run id)
