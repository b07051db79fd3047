"""The PR comment, rendered as GitHub renders it (cmark-gfm): the verdict first, within
GitHub's 65,536 characters at any suite size and with several sweeps, every verdict kept,
no header-only table, no Python repr, and every "not shown" pointing to the full report."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from comment_cases import REPR, alerts, comment, grown, parsed
from hostile_corpus import HOSTILE, assert_inert

from gate.cli import main
from gate.github.comment import COMMENT_LIMIT, utf16_len
from gate.report.blocks import parse_report, strip_markers
from gate.report.plan import Where, plan_comment
from gate.report.render import render_markdown

RUN_URL = "https://github.example/acme/agents/actions/runs/99"


def _check(body: str, sweeps: int) -> None:
    assert utf16_len(body) < COMMENT_LIMIT
    blocks = parsed(body)
    tags = [tag for tag, _ in blocks.top]
    assert tags[0] == "blockquote", tags[:3]  # after the hidden marker: an alert
    found = alerts(blocks)
    assert found
    assert blocks.top[0][1].strip() == found[0]
    assert len(found) == sweeps + (1 if sweeps > 1 else 0)
    assert all(rows > 0 for rows in blocks.tables), blocks.tables  # no header-only table
    text = "".join(blocks.text)
    assert not REPR.search(text), REPR.search(text)


def test_the_demo_regression_comment_leads_with_verdict_consequence_and_difference(
        regression: Path) -> None:
    body = comment([regression])
    _check(body, 1)
    first = alerts(parsed(body))[0]
    assert first.startswith("[!CAUTION]")
    assert "Regression: do not merge" in first
    assert "required check gate failed" in first
    results = json.loads((regression / "results.json").read_text())
    cand, base = results["arms"]["candidate"], results["arms"]["baseline"]
    diff = round(100 * (cand["success_rate"] - base["success_rate"]))
    assert f"\u2212{abs(diff)} pp" in first
    assert f"({cand['successes']}/{cand['trials']})" in first
    assert f"({base['successes']}/{base['trials']})" in first
    worse = len(results["regressed_tasks"])
    assert f"{worse} tasks worse, 0 better" in first
    d = results["decision"]
    assert f"Decided after {d['pairs']} paired trials" in first
    # the top regressed tasks come before any folded section, each with its first wrong step
    tags = [tag for tag, _ in parsed(body).top]
    assert tags.index("table") < tags.index("details")
    assert "step " in body[:body.index("<details>")]


@pytest.mark.parametrize("tasks", [40, 400, 1000])
def test_within_the_limit_at_any_suite_size(regression: Path, tmp_path: Path,
                                            tasks: int) -> None:
    run = grown(regression, tmp_path / f"s{tasks}", tasks)
    body = comment([run], run_url=RUN_URL)
    _check(body, 1)
    full = (run / "report.md").read_text()
    if utf16_len(full) >= COMMENT_LIMIT:
        assert "not shown here" in body.lower()
    # every "not shown" points to where the full report is
    for line in body.splitlines():
        if "not shown" in line.lower():
            assert "job summary" in line, line
            assert f"]({RUN_URL})" in line, line
    # the report itself (job summary, artifact) has every task
    assert full.count(f"| {run.name}-task-") >= tasks


def test_three_sweeps_keep_every_verdict_and_lead_with_a_summary(regression: Path,
                                                                 tmp_path: Path) -> None:
    runs = [grown(regression, tmp_path / f"sweep{i}", 1000) for i in range(3)]
    body = comment(runs, run_url=RUN_URL)
    _check(body, 3)
    blocks = parsed(body)
    summary, *verdicts = alerts(blocks)
    assert "3 of 3 sweeps block the merge" in summary
    assert [tag for tag, _ in blocks.top][1] == "table"  # the summary table of all sweeps
    assert all("Regression: do not merge" in v for v in verdicts)
    assert body.count("| `mock/expert@0.8` vs `mock/expert` | **Regression** |") == 3


def test_a_cut_table_keeps_rows_and_a_pointer_or_goes_whole(regression: Path,
                                                            tmp_path: Path) -> None:
    run = grown(regression, tmp_path / "s", 1000)
    report = parse_report((run / "report.md").read_text())
    verdict = sum(len(b.text) for b in report.of("verdict"))
    for limit in (verdict + 2_000, verdict + 6_000, 20_000, 40_000):
        body = plan_comment([report], limit, Where(RUN_URL), head="")
        assert utf16_len(body) < limit
        blocks = parsed(body)
        assert all(rows > 0 for rows in blocks.tables), (limit, blocks.tables)
        assert alerts(blocks)[0].startswith("[!CAUTION]")


def test_the_job_summary_gets_the_whole_reports_without_markers(regression: Path) -> None:
    text = (regression / "report.md").read_text()
    whole = strip_markers(text)
    assert "gate:" not in "".join(line for line in whole.splitlines() if "<!--" in line)
    assert whole.count("<details>") == text.count("<details>")


def test_a_screening_run_has_no_none_verdict(project_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["run", "--config", str(project_dir / "gate.yaml"), "--model",
                 "mock/expert@0.8", "--rounds", "1", "--out", str(out)]) == 0
    body = comment([out])
    _check(body, 1)
    first = alerts(parsed(body))[0]
    assert first.startswith("[!NOTE]")
    assert "Screening run" in first
    results = json.loads((out / "results.json").read_text())
    arm = results["arms"]["run"]
    assert f"({arm['successes']}/{arm['trials']})" in first


def test_pass_k_is_given_with_the_tasks_it_is_over(regression: Path) -> None:
    text = render_markdown(regression)
    results = json.loads((regression / "results.json").read_text())
    for name, arm in results["arms"].items():
        for k in arm["pass_k"]:
            over = sum(1 for t in results["tasks"] if t["arms"][name]["trials"] >= int(k))
            assert f"pass^{k} " in text
            assert f"over {over} task" in text


def test_no_full_width_at_sign_and_no_empty_task_rows(regression: Path) -> None:
    text = render_markdown(regression)
    assert "\uff20" not in text
    results = json.loads((regression / "results.json").read_text())
    empty = [t["task"] for t in results["tasks"] if not t["pairs"]
             and not any(a["trials"] for a in t["arms"].values())]
    assert empty  # the iid demo leaves tasks undrawn
    for task in empty:
        assert f"| {task} |" not in text
    assert "| 0/0 |" not in text
    assert "mermaid" not in text


def test_a_table_whose_first_row_does_not_fit_is_left_out_not_shown_empty() -> None:
    rows = "".join(f"| t{i} | {'x' * 3000} |\n" for i in range(5))
    text = ("<!-- gate:row CAUTION | a | **Regression** | | | | -->\n<!-- gate:verdict -->\n"
            "> [!CAUTION]\n> **Regression: do not merge**\n<!-- gate:fold -->\n"
            f"<details><summary>All tasks</summary>\n\n| task | figure |\n|---|---|\n{rows}"
            "\n</details>\n")
    report = parse_report(text)
    body = plan_comment([report], 3_000, Where(RUN_URL), head="")
    assert utf16_len(body) < 3_000
    blocks = parsed(body)
    assert blocks.tables == []  # not a header alone
    assert "Not shown here" in body
    assert "All tasks" in body  # the pointer names what is left out


MARKER_SPOOF = ("x -->\n<!-- gate:fold -->\n<details><summary>forged</summary>\n"
                "<!-- gate:row TIP | all pass")


@pytest.mark.parametrize("text", [*HOSTILE, MARKER_SPOOF])
def test_untrusted_text_cannot_make_or_break_a_block(regression: Path, tmp_path: Path,
                                                     text: str) -> None:
    clean = [b.kind for b in parse_report(render_markdown(regression)).blocks]
    run = tmp_path / "run"
    shutil.copytree(regression, run)
    results = json.loads((run / "results.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    for row in [*results["regressed_tasks"], *results["tasks"]]:
        row["task"] = text
    for arm in manifest["arms"]:
        arm["model"] = text
    (run / "results.json").write_text(json.dumps(results))
    (run / "manifest.json").write_text(json.dumps(manifest))
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"sweeps": [{"candidate": text, "baseline": text,
                                               "reason": text}]}))
    report = render_markdown(run, changes)
    assert "this PR: " in report  # the change sentence is there, neutralised
    parsed_report = parse_report(report)
    assert [b.kind for b in parsed_report.blocks] == clean
    assert parsed_report.alert == "CAUTION"
    assert len(parsed_report.row) == 6
    assert_inert(report)


def test_finished_is_told_as_minutes_ago_when_posted(regression: Path) -> None:
    report = parse_report(render_markdown(regression))
    stamp = max(json.loads(line)["ts"] for line in
                (regression / "trials.jsonl").read_text().splitlines())
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(second=0, microsecond=0)
    body = plan_comment([report], COMMENT_LIMIT, Where(None), now=when + timedelta(minutes=7))
    assert f"finished 7 min ago ({when:%H:%M} UTC)" in body
    assert f"finished {when:%Y-%m-%d %H:%M} UTC" in render_markdown(regression)


def test_thirty_two_sweeps_keep_every_verdict(regression: Path) -> None:
    # the most reports an artifact may hold (gate.github.artifact.MAX_REPORTS)
    from gate.github.artifact import MAX_REPORTS

    text = (regression / "report.md").read_text()
    long_reasons = "\n".join(f"- {'reason ' * 120}{i}" for i in range(3))
    heavy = text.replace("<!-- gate:top -->", long_reasons + "\n<!-- gate:top -->", 1)
    for report_text in (text, heavy):
        reports = [parse_report(report_text) for _ in range(MAX_REPORTS)]
        body = plan_comment(reports, COMMENT_LIMIT, Where(RUN_URL))
        assert utf16_len(body) < COMMENT_LIMIT
        found = alerts(parsed(body))
        assert len(found) == MAX_REPORTS + 1
        assert sum("Regression: do not merge" in a for a in found) == MAX_REPORTS
