"""The comment's plan keeps as many failed-trial excerpts as fit: a fold too long for the room
left loses its excerpts from the last one (with a pointer to the full report) before it is
left out whole. Rendered as GitHub renders a comment (cmark-gfm)."""

from __future__ import annotations

from comment_cases import parsed

from gate.github.comment import utf16_len
from gate.report.blocks import parse_report
from gate.report.plan import POINTER_RESERVE, Where, plan_comment

RUN_URL = "https://github.example/acme/agents/actions/runs/7"


def _excerpt(i: int) -> str:
    steps = "".join(f"- step {n}: `tool_{i}` `{{\"n\":{n}}}`\n" for n in range(1, 41))
    return (f"<details><summary>task-{i}: failed trial candidate/task-{i}/r1, its first wrong "
            f"step and calls</summary>\n\n{steps}\n</details>\n")


def _report(excerpts: int) -> str:
    return ("<!-- gate:row CAUTION | a | **Regression** | | | | -->\n<!-- gate:verdict -->\n"
            "> [!CAUTION]\n> **Regression: do not merge**\n<!-- gate:fold -->\n"
            "<details><summary>2 more task(s) worse, and a failed trial of each: its first "
            "wrong step and calls</summary>\n\n| task | cand. |\n|---|---:|\n| a | 0/1 |\n"
            "| b | 1/2 |\n\n" + "".join(_excerpt(i) for i in range(excerpts))
            + "</details>\n")


def test_a_fold_too_long_keeps_its_first_excerpts_and_says_how_many_are_left_out() -> None:
    excerpt = utf16_len(_excerpt(0))
    whole = plan_comment([parse_report(_report(3))], 100_000, Where(RUN_URL))
    # the room the plan keeps for its pointer, and half an excerpt too little for all three
    limit = utf16_len(whole) + POINTER_RESERVE - excerpt // 2
    body = plan_comment([parse_report(_report(3))], limit, Where(RUN_URL))
    assert utf16_len(body) < limit
    assert "task-0: failed trial" in body
    assert "task-1: failed trial" in body
    assert "task-2: failed trial" not in body
    assert "…1 more failed trial(s) not shown here" in body
    html = parsed(body)
    assert html.tables == [2]  # the table of tasks worse is whole
    assert body.count("<details>") == 3  # the fold and two excerpts, each closed
    assert body.count("</details>") == 3
    assert "".join(html.text).count("step 40:") == 2


def test_the_fold_is_left_out_only_when_not_even_one_excerpt_fits() -> None:
    report = parse_report(_report(3))
    alone = plan_comment([parse_report(_report(0))], 100_000, Where(RUN_URL))
    body = plan_comment([report], utf16_len(alone) + 50, Where(RUN_URL))
    assert "failed trial candidate" not in body
    assert "not shown here" in body.lower()  # and says where they are
    assert "job summary" in body
