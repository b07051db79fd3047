"""The Markdown report: sections in order, and under GitHub's comment limit at any size."""

from __future__ import annotations

import json
from pathlib import Path

from gate.cli import main
from gate.report.render import COMMENT_LIMIT, render_markdown


def _sweep(project_dir: Path, out: Path) -> None:
    main(["sweep", "--config", str(project_dir / "gate.yaml"), "--candidate", "mock/expert@0.8",
          "--baseline", "mock/expert", "--out", str(out)])


def test_sections_in_order_with_figures_from_the_artifacts(project_dir: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "s"
    _sweep(project_dir, out)
    text = (out / "report.md").read_text()
    order = ["gate: REGRESSION", "### Arms", "### Statistical decision", "### SLOs",
             "### Scope", "```mermaid", "<details>", "### Evidence"]
    positions = [text.index(heading) for heading in order]
    assert positions == sorted(positions)
    results = json.loads((out / "results.json").read_text())
    assert results["evidence"]["audit_sha256"] in text
    assert f"{results['evidence']['response_ids']} provider response ids" in text
    assert f"{results['scope']['planned']} planned cells" in text
    assert text == render_markdown(out)


def test_report_stays_under_the_comment_limit_for_a_huge_suite(project_dir: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "s"
    _sweep(project_dir, out)
    path = out / "results.json"
    results = json.loads(path.read_text())
    row = results["tasks"][0]
    results["tasks"] = [{**row, "task": f"task-{i:05d}-{'x' * 40}"} for i in range(5000)]
    path.write_text(json.dumps(results))
    text = render_markdown(out)
    assert len(text) < COMMENT_LIMIT
    assert "more tasks not shown here" in text
    assert "### Evidence" in text
