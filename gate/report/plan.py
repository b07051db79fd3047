"""One PR comment from the reports of every sweep, planned within GitHub's limit.

GitHub refuses a comment body over 65,536 characters (UTF-16 code units). The comment is
planned from the reports' blocks (gate.report.blocks) before it is put together, never cut
afterwards:

1. with two reports or more, a summary first: an alert with the overall outcome and a table
   with one row per sweep (each sweep's verdict);
2. every report's verdict block (verdict, consequence, difference, decision, context line);
3. every report's top failures, in order, while they fit;
4. the folded sections, the room left shared out equally between the reports (a report that
   needs less leaves the rest to the others); a section that does not fit has its longest
   table cut to the rows that fit (never to its header alone), then its nested sections (the
   failed trials' excerpts) left out from the last, else it is left out.

Whatever is not shown says so and points to the full report: the job summary of the workflow
run and ``report.md`` in the run's artifact hold every report whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from gate.report.blocks import Block, ParsedReport

SEPARATOR = "\n\n---\n\n"
SUMMARY_HEADER = ("| sweep | verdict | candidate | baseline | difference | tasks worse / better |\n"
                  "|---|---|---:|---:|---:|---:|")
ALERT_ORDER = ("CAUTION", "WARNING", "NOTE", "TIP")
POINTER_RESERVE = 600  # per report: the "not shown here" line (names capped below)
MAX_POINTER_NAMES = 240  # characters naming what is left out


def utf16_len(text: str) -> int:
    """Length as GitHub (JavaScript) counts it: UTF-16 code units, >= the code-point count."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Where:
    """Where the full report is, as words for a "not shown here" pointer."""

    run_url: str | None = None

    @property
    def full(self) -> str:
        if self.run_url:
            return (f"the [job summary]({self.run_url}) and `report.md` in the "
                    f"[artifacts]({self.run_url}#artifacts)")
        return ("the job summary of this workflow run and `report.md` in its artifact "
                "(`gate report --run DIR`)")


def summary(reports: list[ParsedReport]) -> str:
    """The overall alert and one row per sweep (for two reports or more)."""
    alerts = [r.alert for r in reports if r.alert in ALERT_ORDER]
    failing = sum(1 for a in alerts if a in ("CAUTION", "WARNING"))
    unknown = len(reports) - len(alerts)
    words = [r.row[1].strip("*") for r in reports if len(r.row) > 1]
    counts = ", ".join(f"{words.count(w)} {w}" for w in dict.fromkeys(words))
    if failing:
        worst = min(alerts, key=ALERT_ORDER.index)
        outcome = (f"**{failing} of {len(reports)} sweeps block the merge** (required check "
                   "`gate` failed)")
    elif unknown:
        worst, outcome = "WARNING", f"**{unknown} of {len(reports)} reports have no verdict**"
    else:
        worst, outcome = min(alerts, key=ALERT_ORDER.index), f"**All {len(reports)} pass**"
    rows = []
    for i, r in enumerate(reports, start=1):
        cells = (r.row + [""] * 6)[:6] if r.row else [f"report {i}", "no verdict (below)", "",
                                                         "", "", ""]
        rows.append("| " + " | ".join(cells) + " |")
    return (f"> [!{worst}]\n> {outcome}{': ' + counts if counts else ''}.\n\n"
            f"{SUMMARY_HEADER}\n" + "\n".join(rows) + "\n")


def _with_summary(reports: list[ParsedReport]) -> bool:
    return len(reports) > 1 and any(r.row for r in reports)


def _table_spans(lines: list[str]) -> list[tuple[int, int]]:
    """(first row, end) line indexes of each table's body rows (after header and rule)."""
    spans, i = [], 0
    while i < len(lines):
        if (lines[i].startswith("|") and i + 1 < len(lines)
                and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip())):
            start = end = i + 2
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            spans.append((start, end))
            i = end
        else:
            i += 1
    return spans


def _capped(block: Block, room: int, where: Where) -> str | None:
    """``block`` with its longest table cut so that the whole fits ``room``, or None."""
    lines = block.text.split("\n")
    spans = [s for s in _table_spans(lines) if s[1] - s[0] > 1]
    if not spans:
        return None
    start, end = max(spans, key=lambda s: sum(len(x) + 1 for x in lines[s[0]:s[1]]))
    total = end - start
    note = f"\n…{total} more row(s) not shown here: every row is in {where.full}.\n"
    fixed = utf16_len("\n".join(lines[:start] + lines[end:])) + utf16_len(note) + 2
    keep, used = 0, fixed
    while keep < total - 1 and used + utf16_len(lines[start + keep]) + 1 <= room:
        used += utf16_len(lines[start + keep]) + 1
        keep += 1
    if keep == 0:
        return None  # never a header-only table
    note = f"\n…{total - keep} more row(s) not shown here: every row is in {where.full}.\n"
    text = "\n".join(lines[:start + keep]) + "\n" + note + "\n".join(lines[end:])
    return text if utf16_len(text) <= room else None


def _nested(lines: list[str]) -> list[tuple[int, int]]:
    """(first, end) line indexes of the ``<details>`` sections nested in a fold (a failed
    trial's excerpt each), after its own opening line."""
    spans, i = [], 1
    while i < len(lines):
        if lines[i].startswith("<details><summary>"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j] == "</details>"), None)
            if end is None:
                break
            spans.append((i, end + 1))
            i = end + 1
        else:
            i += 1
    return spans


def _trimmed(block: Block, room: int, where: Where) -> str | None:
    """``block`` within ``room``: its longest table cut (``_capped``), and if that is not
    enough, its nested sections (the failed trials' excerpts) left out from the last one,
    with a pointer to where they are; None when even the first one does not fit."""
    lines = block.text.split("\n")
    nested = _nested(lines)
    for drop in range(len(nested) + 1):
        text = block.text
        if drop:
            first = nested[len(nested) - drop][0]
            last = nested[-1][1]
            note = (f"…{drop} more failed trial(s) not shown here: every one is in "
                    f"{where.full}.")
            text = "\n".join([*lines[:first], note, *lines[last:]])
        if utf16_len(text) <= room:
            return text
        cut = _capped(Block(block.kind, text), room, where)
        if cut is not None:
            return cut
    return None


def _folds(report: ParsedReport, room: int, where: Where) -> tuple[list[str], list[str]]:
    """The fold blocks within ``room``, in their order: first every one that fits whole
    (the small ones are not crowded out by a long table), then the others cut to the room
    left, or left out (their titles are returned)."""
    folds = report.of("fold")
    chosen: dict[int, str] = {}
    for i, block in enumerate(folds):
        size = utf16_len(block.text) + 2
        if size <= room:
            chosen[i] = block.text
            room -= size
    for i, block in enumerate(folds):
        if i in chosen:
            continue
        cut = _trimmed(block, room - 2, where)
        if cut is not None:
            chosen[i] = cut
            room -= utf16_len(cut) + 2
    shown = [chosen[i] for i in sorted(chosen)]
    return shown, [b.title for i, b in enumerate(folds) if i not in chosen]


def _pointer(left_out: list[str], where: Where) -> str:
    names = "; ".join(re.sub(r"<[^>]*>", "", t) for t in left_out)
    if len(names) > MAX_POINTER_NAMES:
        names = names[:MAX_POINTER_NAMES].rsplit(";", 1)[0] + "; …"
    return (f"*Not shown here, to fit GitHub's 65,536-character limit: {names}. The full "
            f"report is in {where.full}.*")


def _alert_only(text: str) -> str:
    """The leading GitHub alert of a verdict block; a block that opens with none (a report
    without blocks) is kept whole, for the last resort of cutting the body."""
    lines = text.split("\n")
    if not re.match(r"> \[!(CAUTION|WARNING|TIP|NOTE)\]", lines[0]):
        return text
    n = next((i for i, line in enumerate(lines) if not line.startswith(">")), len(lines))
    return "\n".join(lines[:n])


def _need(report: ParsedReport) -> int:
    return sum(utf16_len(b.text) + 2 for b in report.of("fold"))


_FINISHED = re.compile(r"finished (\d{4}-\d\d-\d\d) (\d\d:\d\d) UTC")


def with_age(text: str, now: datetime | None) -> str:
    """The context line's "finished <UTC time>" (from trials.jsonl) as "finished N min ago"
    at the time the comment is posted."""
    if now is None:
        return text

    def age(m: re.Match[str]) -> str:
        when = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}:00+00:00")
        minutes = max(0, int((now - when).total_seconds() // 60))
        ago = f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"
        return f"finished {ago} ago ({m.group(2)} UTC)"

    return _FINISHED.sub(age, text)


def plan_comment(reports: list[ParsedReport], limit: int, where: Where,
                 head: str = "", now: datetime | None = None) -> str:
    """The comment body (``head`` first, e.g. the hidden marker), shorter than ``limit``;
    ``now``: when it is posted (for "finished N min ago")."""
    parts: list[list[str]] = [[with_age(b.text, now) for b in r.of("verdict")]
                              for r in reports]
    top = summary(reports) if _with_summary(reports) else ""
    used = (utf16_len(head) + utf16_len(top) + utf16_len(SEPARATOR) * len(reports)
            + sum(utf16_len(t) + 2 for p in parts for t in p) + POINTER_RESERVE * len(reports))
    room = limit - 1 - used
    left_out: list[list[str]] = [[] for _ in reports]
    if room < 0:  # many sweeps with long verdict blocks: keep each one's alert
        for i, p in enumerate(parts):
            short = [_alert_only(t) for t in p]
            if short != p:
                room += sum(utf16_len(t) for t in p) - sum(utf16_len(t) for t in short)
                parts[i] = short
                left_out[i].append("the rest of the verdict block")
    for i, r in enumerate(reports):
        for block in r.of("top"):
            size = utf16_len(block.text) + 2
            if size <= room:
                parts[i].append(block.text)
                room -= size
            else:
                left_out[i].append("the tasks the candidate did worse on")
    order = sorted(range(len(reports)), key=lambda i: _need(reports[i]))
    for n, i in enumerate(order):
        share = max(0, room) // (len(order) - n)
        shown, missing = _folds(reports[i], share, where)
        parts[i] += shown
        left_out[i] += missing
        room -= sum(utf16_len(t) + 2 for t in shown)
    for i in range(len(reports)):
        if left_out[i]:
            parts[i].append(_pointer(left_out[i], where))
    body = SEPARATOR.join("\n\n".join(p) for p in parts)
    return head + (top + SEPARATOR if top else "") + body + "\n"


def full_document(reports: list[ParsedReport]) -> str:
    """Every report whole (the job summary), with the summary table first for several."""
    body = SEPARATOR.join("\n\n".join(b.text for b in r.blocks) for r in reports)
    top = summary(reports) + SEPARATOR if _with_summary(reports) else ""
    return top + body + "\n"

