"""The Markdown report: sections in order, and under GitHub's comment limit at any size."""

from __future__ import annotations

import json
from pathlib import Path

from gate.cli import main
from gate.report.blocks import parse_report
from gate.report.plan import Where, plan_comment
from gate.report.render import COMMENT_LIMIT, render_markdown


def _sweep(project_dir: Path, out: Path) -> None:
    main(["sweep", "--config", str(project_dir / "gate.yaml"), "--candidate", "mock/expert@0.8",
          "--baseline", "mock/expert", "--out", str(out)])


def test_sections_in_order_with_figures_from_the_artifacts(project_dir: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "s"
    _sweep(project_dir, out)
    text = (out / "report.md").read_text()
    order = ["> [!CAUTION]", "> **Regression: do not merge**", "| task the candidate did worse on",
             "<details><summary>Arms and statistics", "statistical decision",
             "<details><summary>Trials and cost", "<details><summary>SLOs",
             "<details><summary>All tasks", "<details><summary>Evidence"]
    positions = [text.index(heading) for heading in order]
    assert positions == sorted(positions)
    results = json.loads((out / "results.json").read_text())
    assert results["evidence"]["audit_sha256"] in text
    assert f"{results['evidence']['response_ids']} provider response ids" in text
    assert f"{results['scope']['planned']} planned cells" in text
    assert text == render_markdown(out)


def test_report_of_a_huge_suite_is_whole_and_its_comment_fits(project_dir: Path,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "s"
    _sweep(project_dir, out)
    path = out / "results.json"
    results = json.loads(path.read_text())
    row = results["tasks"][0]
    results["tasks"] = [{**row, "task": f"task-{i:05d}-{'x' * 40}", "pairs": 1}
                        for i in range(5000)]
    regressed = results["regressed_tasks"][0]
    results["regressed_tasks"] = [{**regressed, "task": f"task-{i:05d}-{'y' * 40}"}
                                  for i in range(5000)]
    path.write_text(json.dumps(results))
    text = render_markdown(out)  # the job summary and the artifact: every row
    assert "task-04999-" + "y" * 40 in text
    reports = [parse_report(text)]
    body = plan_comment(reports, COMMENT_LIMIT, Where(None))
    assert len(body) < COMMENT_LIMIT
    assert "more row(s) not shown here" in body
    assert "> **Regression: do not merge**" in body
