"""The blocks of report.md, so that several reports can be planned into one PR comment.

report.md is the full report (the job summary and the artifact hold it whole). It is cut into
blocks by marker lines, HTML comments that a markdown renderer does not show:

``<!-- gate:row ALERT | cell | cell | ... -->``
    the report's row in the summary table of a comment with several sweeps (ALERT is the
    verdict's GitHub alert type, which sets the comment's overall alert).
``<!-- gate:verdict -->``
    the verdict block and the context line: always kept in the comment.
``<!-- gate:top -->``
    the top failures: kept when it fits.
``<!-- gate:fold -->``
    one folded ``<details>`` section: kept, shortened (its longest table capped, never to a
    header alone) or left out, with a pointer to the full report.

Untrusted text inside a report is neutralised by the renderer (``&lt;`` for ``<``, look-alikes
in code spans), so it cannot make a marker line. A report without markers (an older gate's,
or any text that is not gate's) is one ``verdict`` block; gate's own states without a sweep
report (gate.report.states) carry markers like a sweep's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

KINDS = ("verdict", "top", "fold")
_MARKER = re.compile(r"<!-- gate:(row|verdict|top|fold)(?: (.*?))? -->")


def marker(kind: str, text: str = "") -> str:
    return f"<!-- gate:{kind}{' ' + text if text else ''} -->"


@dataclass
class Block:
    kind: str  # verdict, top, fold
    text: str

    @property
    def title(self) -> str:
        """A fold's ``<summary>`` text (as written, HTML), else the kind."""
        found = re.search(r"<summary>(.*?)</summary>", self.text)
        return found.group(1) if found else self.kind


@dataclass
class ParsedReport:
    blocks: list[Block] = field(default_factory=list)
    alert: str | None = None  # from the row marker
    row: list[str] = field(default_factory=list)  # summary-table cells (markdown)

    def of(self, kind: str) -> list[Block]:
        return [b for b in self.blocks if b.kind == kind]

    def map(self, fn: Callable[[str], str]) -> ParsedReport:
        """The same report with ``fn`` applied to every text (e.g. neutralising)."""
        return ParsedReport([Block(b.kind, fn(b.text)) for b in self.blocks], self.alert,
                            [fn(c) for c in self.row])


def parse_report(text: str) -> ParsedReport:
    """Split report.md at its marker lines (kept out of the blocks' text)."""
    report = ParsedReport()
    kind, lines = "verdict", []  # text before the first marker: the verdict block
    for line in text.splitlines():
        found = _MARKER.fullmatch(line.strip())
        if found is None:
            lines.append(line)
            continue
        if found.group(1) == "row":
            alert, _, cells = (found.group(2) or "").partition(" | ")
            report.alert = alert.strip().upper() or None
            report.row = [c.strip() for c in cells.split(" | ")] if cells else []
            continue
        _close(report, kind, lines)
        kind, lines = found.group(1), []
    _close(report, kind, lines)
    return report


def _close(report: ParsedReport, kind: str, lines: list[str]) -> None:
    text = "\n".join(lines).strip("\n")
    if text.strip():
        report.blocks.append(Block(kind, text))


def strip_markers(text: str) -> str:
    """report.md without its marker lines (what a reader of the whole report sees)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if _MARKER.fullmatch(line.strip()) is None)
