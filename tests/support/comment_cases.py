"""Run directories and PR comments of any suite size, rendered as GitHub renders them.

The demo's regression sweep runs once; larger suites are that run with results.json grown to
N tasks (most of them regressed), so the comment is planned from real blocks at any size.
cmark-gfm (``cmarkgfm``, GitHub's own fork of cmark) renders the bodies.
"""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
from cmarkgfm.cmark import Options
from paths import copy_project

from gate.cli import main
from gate.report.blocks import parse_report
from gate.report.neutralize import neutralize
from gate.report.plan import Where, plan_comment
from gate.report.render import render_markdown

MARKER = "<!-- gate-report -->\n"
REPR = re.compile(r"\bNone\b|\{'|\['|\bTrue\b|\bFalse\b|\bnan\b")


def demo_regression(root: Path) -> Path:
    """mock/expert@0.8 against mock/expert on the repository's own suite (the demo's)."""
    project = copy_project(root / "project")
    out = root / "regression"
    code = main(["sweep", "--config", str(project / "gate.yaml"), "--candidate",
                 "mock/expert@0.8", "--baseline", "mock/expert", "--out", str(out)])
    assert code == 1
    return out


def grown(run: Path, to: Path, tasks: int, regressed_share: float = 0.9) -> Path:
    """A copy of ``run`` whose results.json has ``tasks`` tasks, most of them regressed."""
    shutil.copytree(run, to)
    results = json.loads((to / "results.json").read_text())
    row = next(t for t in results["tasks"] if t["pairs"])
    example = results["regressed_tasks"][0]
    names = [f"{to.name}-task-{i:04d}-{'x' * 30}" for i in range(tasks)]
    results["tasks"] = [{**row, "task": name} for name in names]
    worse = names[: int(tasks * regressed_share)]
    results["regressed_tasks"] = [{**example, "task": name} for name in worse]
    (to / "results.json").write_text(json.dumps(results))
    (to / "report.md").write_text(render_markdown(to), encoding="utf-8")
    return to


def comment(runs: list[Path], limit: int = 65_536, run_url: str | None = None) -> str:
    """The comment body ``gate comment`` plans from these runs' report.md."""
    reports = [parse_report((r / "report.md").read_text()).map(
        lambda s: neutralize(s, context="document")) for r in runs]
    return plan_comment(reports, limit, Where(run_url), head=MARKER)


def html(body: str) -> str:
    """The body rendered as GitHub renders a comment (raw HTML kept, as GitHub's sanitiser
    keeps details, summary and sub)."""
    return cmarkgfm.github_flavored_markdown_to_html(body, options=Options.CMARK_OPT_UNSAFE)


class Blocks(HTMLParser):
    """Top-level elements in order, tables with their row counts, and the visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.top: list[tuple[str, str]] = []  # (tag, text) of each top-level element
        self.tables: list[int] = []  # body rows of each table
        self.text: list[str] = []
        self._in_tbody = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth == 0:
            self.top.append((tag, ""))
        if tag == "table":
            self.tables.append(0)
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self.tables[-1] += 1
        if tag not in ("br", "hr", "img", "input"):
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_tbody = False
        if tag not in ("br", "hr", "img", "input"):
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.top and self.depth > 0:
            tag, text = self.top[-1]
            self.top[-1] = (tag, text + data)


def parsed(body: str) -> Blocks:
    blocks = Blocks()
    blocks.feed(html(body))
    return blocks


def alerts(blocks: Blocks) -> list[str]:
    """The text of each top-level GitHub alert (a blockquote opening with ``[!TYPE]``)."""
    return [text.strip() for tag, text in blocks.top
            if tag == "blockquote" and re.match(r"\s*\[!(CAUTION|WARNING|TIP|NOTE)\]", text)]
