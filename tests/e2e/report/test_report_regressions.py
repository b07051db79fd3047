"""The comment a reviewer decides from: regressed tasks first with why, accounting that adds
up to the trials on disk, links to the workflow run, and how to continue an undecided sweep."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hostile_corpus import HOSTILE, assert_inert

from gate.cli import main
from gate.config.schema import StatisticsConfig
from gate.engine.results import TOP_UP_WHY, accounting, failure_reasons
from gate.records import AuditAttempt, Decision, Manifest, PlannedScope, Trial, TrialScores
from gate.report.render import print_decision, render_markdown
from gate.rundir import read_results
from gate.rundir.jsonl import read_jsonl

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it

BUCKETS = ("used_by_decision", "lost_to_provider", "environment_errors", "not_scored",
           "unpaired", "after_decision", "outside_plan")


def _manifest(scope: dict[str, list[object]], batch: int = 4) -> Manifest:
    planned = PlannedScope.model_construct(schedule="rounds", max_rounds=2, **scope)
    return Manifest.model_construct(scope=planned, statistics=StatisticsConfig(batch=batch))


def _configure(project_dir: Path, **sections: dict[str, object]) -> None:
    path = project_dir / "gate.yaml"
    config = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        config[name] = {**(config.get(name) or {}), **values}
    path.write_text(yaml.safe_dump(config))


def _sweep(project_dir: Path, out: Path, candidate: str, *extra: str) -> int:
    return main(["sweep", "--config", str(project_dir / "gate.yaml"), "--candidate", candidate,
                 "--baseline", "mock/expert", "--out", str(out), *extra])


def _table(text: str, start: str) -> list[list[str]]:
    section = text[text.index(start):]
    lines = section.splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("| "):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def _regressed_rows(text: str) -> list[list[str]]:
    """(task, candidate, baseline, reasons or first step) of every regressed task, in order:
    the top ones under the verdict, then the folded rest."""
    top = _table(text, "| task the candidate did worse on |")
    more = _table(text, "| task | cand. | base. | difference |") if "more task(s) worse" in text \
        else []
    return [[t, c, b, step] for t, c, b, step in top] + [[t, c, b, r] for t, c, b, _d, r in more]


def _rate(cell: str) -> float:
    ok, n = cell.split("/")
    return int(ok) / int(n)


def test_regressed_tasks_lead_worst_first_each_with_its_first_wrong_step(
        regression: Path) -> None:
    text = render_markdown(regression)
    trials = read_jsonl(regression / "trials.jsonl")
    results = json.loads((regression / "results.json").read_text())
    rows = _regressed_rows(text)
    assert len(rows) == len(results["regressed_tasks"]) > 5
    assert text.index("| task the candidate did worse on |") < text.index("<details>")
    differences = [_rate(c) - _rate(b) for _task, c, b, _r in rows]
    assert all(d < 0 for d in differences)
    assert differences == sorted(differences)
    by_id = {t["trial_id"]: t for t in trials}
    for i, (task, cand, base, cell) in enumerate(rows):
        task = task.replace("\\", "")
        mine = [t for t in trials if t["task"] == task and t["status"] == "scored"]
        c = [t for t in mine if t["arm"] == "candidate"]
        b = [t for t in mine if t["arm"] == "baseline"]
        assert cand == f"{sum(t['success'] for t in c)}/{len(c)}"
        assert base == f"{sum(t['success'] for t in b)}/{len(b)}"
        if i < 5:  # the first wrong step of the example trial, recomputed from its calls
            example = by_id[results["regressed_tasks"][i]["example_trial"]]
            wrong = next(x for x in example["calls"]
                         if x.get("wrong_fix") or x.get("distractor")
                         or x.get("policy_violation") or x.get("invalid"))
            assert cell.startswith(f"step {wrong['step']} `{wrong['tool']}"), cell
            continue
        failed = [t for t in c if not t["success"]]
        # the counts, recomputed from the trial records' fields
        wrong_n = sum(1 for t in failed if t["wrong_fixes"])
        policy = sum(1 for t in failed if t["policy_violations"])
        steps = sum(1 for t in failed if t["ended"] == "step_limit")
        for label, n in (("wrong fix", wrong_n), ("policy violation", policy),
                         ("step limit", steps)):
            assert (f"{label} {n}" in cell) == (n > 0), (task, label, cell)


def test_each_regressed_task_shows_a_failing_trace_excerpt_folded(regression: Path) -> None:
    text = render_markdown(regression)
    results = json.loads((regression / "results.json").read_text())
    by_id = {t["trial_id"]: t for t in read_jsonl(regression / "trials.jsonl")}
    first = results["regressed_tasks"][0]
    trial = by_id[first["example_trial"]]
    assert not trial["success"]
    assert trial["arm"] == "candidate"
    start = text.index("its first wrong step and calls")
    block = text[start:text.index("</details>", start)]
    assert text.rfind("<details><summary>", 0, start) > text.index("| task the candidate")
    call = trial["calls"][0]
    args = json.dumps(call["args"], sort_keys=True, separators=(",", ":"))
    assert f"- step {call['step']}: `{call['tool']}` `{args[:60]}" in block


def test_failure_reasons_come_from_counts_not_text() -> None:
    trial = {"wrong_fixes": 1, "policy_violations": ["refund over cap"],
             "invalid_by_kind": {"schema": 2, "unknown_tool": 0}, "ended": "truncated",
             "truncations": 1, "refusals": ["I can't"], "distractor_actions": 0}
    assert failure_reasons(TrialScores(**trial)) == [
        "wrong_fix", "policy_violation", "invalid_action:schema", "truncation", "refusal"]
    assert failure_reasons(TrialScores(ended="final_answer")) == ["wrong_end_state"]
    assert failure_reasons(TrialScores(ended="step_limit")) == ["step_limit"]


def _assert_adds_up(run: Path) -> dict[str, object]:
    results = json.loads((run / "results.json").read_text())
    acc = results["accounting"]
    lines = Counter(t["arm"] for t in read_jsonl(run / "trials.jsonl"))
    audit = read_jsonl(run / "audit.jsonl")
    for arm, a in acc["arms"].items():
        assert a["trials_on_disk"] == lines[arm]
        assert sum(a[k] for k in BUCKETS) == lines[arm], a
        cost = sum(float(x.get("cost_computed_usd") or 0) for x in audit if x["arm"] == arm)
        parts = a["cost_decision_usd"] + a["cost_after_decision_usd"] + a["cost_other_usd"]
        assert parts == pytest.approx(cost, abs=1e-6)
    assert acc["after_decision_trials"] == sum(a["after_decision"] for a in acc["arms"].values())
    pairs = results["decision"]["pairs"]
    assert all(a["used_by_decision"] == pairs for a in acc["arms"].values())
    text = render_markdown(run)
    for arm, a in acc["arms"].items():
        assert (f"`{arm}`: {a['trials_on_disk']} trials = {a['used_by_decision']} used by the "
                f"decision + {a['lost_to_provider']} lost") in text
    return acc


def test_regression_accounting_sums_to_the_trials_on_disk(regression: Path) -> None:
    acc = _assert_adds_up(regression)
    results = json.loads((regression / "results.json").read_text())
    manifest = json.loads((regression / "manifest.json").read_text())
    decided = results["decision"]["decided_round"]
    batch_of = {(task, int(i)): int(b) for i, task, b in manifest["scope"]["units"]}
    trials = read_jsonl(regression / "trials.jsonl")
    # a regression is never topped up: nothing ran in a batch after the deciding one; under
    # iid the rest of the deciding batch (run at once) is counted after the decision
    assert all(batch_of[(t["task"], t["round"])] <= decided for t in trials)
    text = render_markdown(regression)
    if acc["after_decision_trials"]:
        assert acc["after_decision_why"].startswith("run in the same batch")
        assert f"**{acc['after_decision_trials']} trial(s) ran after it" in text
    else:
        assert "No trial ran after it." in text


def test_rounds_regression_runs_nothing_after_the_decision(project_dir: Path,
                                                           tmp_path: Path) -> None:
    _configure(project_dir, statistics={"schedule": "rounds", "pass_k_top_up": True})
    out = tmp_path / "rounds"
    assert _sweep(project_dir, out, "mock/expert@0.8") == 1
    acc = _assert_adds_up(out)
    assert acc["after_decision_trials"] == 0  # even with the top-up on
    assert "No trial ran after it." in render_markdown(out)


def test_pass_k_top_up_is_a_setting_and_its_trials_are_accounted(project_dir: Path,
                                                                 tmp_path: Path) -> None:
    # equal models decide "no regression" at round 2; a pass^3 SLO needs a third round
    _configure(project_dir, slos={"pass_k": {"k": 3, "min": 0.5}},
               statistics={"schedule": "rounds", "pass_k_top_up": True})
    topped = tmp_path / "topped"
    assert _sweep(project_dir, topped, "mock/expert") == 0
    acc = _assert_adds_up(topped)
    results = json.loads((topped / "results.json").read_text())
    decided = results["decision"]["decided_round"]
    assert decided is not None
    assert decided < 3
    late = [t for t in read_jsonl(topped / "trials.jsonl") if t["round"] > decided]
    assert acc["after_decision_trials"] == len(late) > 0
    audit = read_jsonl(topped / "audit.jsonl")
    late_cost = sum(float(a.get("cost_computed_usd") or 0) for a in audit if a["round"] > decided)
    assert acc["after_decision_cost_usd"] == pytest.approx(late_cost, abs=1e-6)
    assert acc["after_decision_why"] == TOP_UP_WHY
    assert main(["verify", "--run", str(topped)]) == 0  # the accounting is re-derived too
    text = render_markdown(topped)
    assert f"**{len(late)} trial(s) ran after it, costing $" in text
    console = io.StringIO()
    print_decision(read_results(topped / "results.json"), console)
    assert f"after the decision: {len(late)} trial(s), $" in console.getvalue()

    _configure(project_dir, statistics={"pass_k_top_up": False})
    plain = tmp_path / "plain"
    assert _sweep(project_dir, plain, "mock/expert") == 0  # pass^3 unmeasured: not a breach
    slos = json.loads((plain / "results.json").read_text())["slos"]
    assert "pass^3" in slos["unmeasured"]
    assert slos["met"] is True
    acc = _assert_adds_up(plain)
    assert acc["after_decision_trials"] == 0
    assert "pass^3 was not measured" in render_markdown(plain)


def test_accounting_of_lost_unpaired_and_unplanned_trials() -> None:
    scope = {"arms": ["candidate", "baseline"], "tasks": ["a", "b", "c"],
             "units": [[1, "a", 1], [1, "b", 1], [1, "c", 1], [2, "a", 2], [2, "b", 2],
                       [2, "c", 2]]}
    manifest = _manifest(scope, batch=3)

    def trial(arm: str, task: str, rnd: int, status: str = "scored") -> Trial:
        return Trial.model_construct(trial_id=f"{arm}/{task}/r{rnd}", arm=arm, task=task,
                                     round=rnd, status=status)

    trials = [trial("candidate", "a", 1), trial("baseline", "a", 1),
              trial("candidate", "b", 1, "provider_error"), trial("baseline", "b", 1),
              trial("candidate", "c", 1), trial("baseline", "c", 1, "no_model_call"),
              trial("candidate", "a", 2), trial("baseline", "a", 2, "environment_error"),
              trial("candidate", "z", 9)]
    audit = [AuditAttempt.model_construct(arm=t.arm, task=t.task, round=t.round,
                                          cost_computed_usd=0.5) for t in trials]
    audit.append(AuditAttempt.model_construct(arm="baseline", task="b", round=2,
                                              cost_computed_usd=0.25))
    # the baseline's no_model_call is its own failure: (c, 1) is a pair the decision used
    decision = Decision.model_construct(pairs=2, rounds=1, decided_round=1)
    record = accounting(manifest, trials, audit, decision)
    assert record is not None
    acc = record.to_json()
    cand, base = acc["arms"]["candidate"], acc["arms"]["baseline"]
    assert (cand["used_by_decision"], cand["lost_to_provider"], cand["unpaired"],
            cand["after_decision"], cand["outside_plan"]) == (2, 1, 0, 1, 1)
    assert (base["used_by_decision"], base["unpaired"], base["not_scored"],
            base["after_decision"]) == (2, 1, 0, 1)
    for arm in (cand, base):
        assert sum(arm[k] for k in BUCKETS) == arm["trials_on_disk"]
    assert (cand["cost_decision_usd"], cand["cost_after_decision_usd"],
            cand["cost_other_usd"]) == (1.5, 0.5, 0.5)
    assert base["cost_other_usd"] == 0.25  # a call whose trial never finished
    assert acc["after_decision_trials"] == 2
    assert acc["after_decision_why"] == TOP_UP_WHY


def test_every_comment_links_the_workflow_run_and_its_artifacts(
        regression: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "[workflow run]" not in render_markdown(regression)  # not in Actions: no link
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/agent")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    text = render_markdown(regression)
    run = "https://github.com/acme/agent/actions/runs/4242"
    assert f"]({run})" in text
    assert f"]({run}#artifacts)" in text
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/agent) [x](javascript:alert(1)")
    assert "[workflow run]" not in render_markdown(regression)


def test_the_default_tables_are_narrow(regression: Path) -> None:
    text = render_markdown(regression)
    headers = [line for line in text.splitlines() if line.startswith("| ")
               and text.splitlines()[text.splitlines().index(line) + 1].startswith("|-")]
    assert headers
    assert all(h.count(" | ") + 1 <= 5 for h in headers), headers
    arms = text[text.index("<details><summary>Arms and statistics"):]
    assert arms.index("| arm | model |") < arms.index("| statistical decision |")


def test_an_inconclusive_verdict_says_how_to_continue(project_dir: Path,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert _sweep(project_dir, out, "mock/expert", "--max-rounds", "1") == 3
    text = render_markdown(out)
    assert "add the label `gate:continue`" in text
    assert "run the workflow with `continue: true`" in text
    assert "`gate sweep --resume --out DIR --max-rounds N` with N above the 1 round(s)" in text


def test_the_decided_report_does_not_offer_to_continue(regression: Path) -> None:
    assert "gate:continue" not in render_markdown(regression)


@pytest.mark.parametrize("text", HOSTILE)
def test_regressed_tasks_and_excerpts_are_inert(regression: Path, tmp_path: Path,
                                                text: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(regression, run)
    results = json.loads((run / "results.json").read_text())
    wanted = {r["example_trial"] for r in results["regressed_tasks"]}
    for row in results["regressed_tasks"]:
        row["task"] = text
        row["reasons"] = {text: 1, f"invalid_action:{text}": 2}
    (run / "results.json").write_text(json.dumps(results))
    trials = read_jsonl(run / "trials.jsonl")
    for t in trials:
        if t["trial_id"] in wanted:
            t["calls"] = [{"step": 1, "tool": text, "args": {"q": text}, "invalid": text,
                           "policy_violation": text}]
            t["ended"] = text
    (run / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials))
    report = render_markdown(run)
    assert_inert(report)
    for line in report.splitlines():
        if line.startswith("<details><summary>") and "its first wrong step and calls" in line:
            assert re.fullmatch(r"<details><summary>[^<>]*</summary>", line), line


def test_regressed_tasks_are_ordered_by_the_difference() -> None:
    from gate.engine.results import regressed_tasks

    manifest = _manifest({"arms": ["candidate", "baseline"], "tasks": ["a", "b", "c", "d", "e"],
                          "units": []})
    outcomes = {"a": ([True, False], [True, True]), "b": ([False, False], [True, True]),
                "c": ([True, True], [True, True]), "d": ([True, False], [False, True]),
                "e": ([False], [True])}
    trials = [
        Trial.model_construct(trial_id=f"{arm}/{task}/r{i}", arm=arm, task=task, round=i,
                              status="scored", success=ok, ended="step_limit",
                              wrong_fixes=i - 1)
        for task, (cand, base) in outcomes.items()
        for arm, runs in (("candidate", cand), ("baseline", base))
        for i, ok in enumerate(runs, start=1)
    ]
    rows = [r.to_json() for r in regressed_tasks(manifest, trials)]
    assert [(r["task"], r["difference"]) for r in rows] == [("b", -1.0), ("e", -1.0),
                                                             ("a", -0.5)]
    assert rows[0]["reasons"] == {"step_limit": 2, "wrong_fix": 1}
    assert rows[0]["example_trial"] == "candidate/b/r1"
    assert rows[2]["candidate"] == {"successes": 1, "trials": 2}


def test_trials_not_yet_used_by_an_undecided_sweep_are_not_called_after_it(
        regression: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(regression, run)
    results = json.loads((run / "results.json").read_text())
    results["decision"]["decided_round"] = None
    results["accounting"]["after_decision_trials"] = 2
    (run / "results.json").write_text(json.dumps(results))
    text = render_markdown(run)
    assert "**2 trial(s), costing $" in text
    assert "are not used by it yet**" in text
    assert "ran after it" not in text
