"""The comment's states without a sweep report (gate.report.states), rendered as GitHub renders
a comment (cmark-gfm): each opens with its verdict block, an alert whose first line is one word
of the product's verdict table, the consequence and the required check; its summary row names
the same word; untrusted names stay inert and cannot open or close a block."""

from __future__ import annotations

import re

import pytest
from comment_cases import alerts, parsed
from hostile_corpus import HOSTILE, assert_inert

import gate.report.verdict
from gate.report.blocks import parse_report
from gate.report.neutralize import neutralize
from gate.report.plan import Where, plan_comment, summary
from gate.report.states import NO_REPORT, evaluating_report, no_report

HEAD = "c" * 40
RUN_URL = "https://github.example/acme/agents/actions/runs/7"


def documented_words() -> set[str]:
    """Every verdict word in gate.report.verdict's tables (the product's one list)."""
    doc = gate.report.verdict.__doc__ or ""
    return {m.group(1).strip() for m in re.finditer(
        r"^([A-Z][A-Za-z ]+?)\s{2,}(?:CAUTION|WARNING|TIP|NOTE)\s", doc, re.MULTILINE)}


def comment_of(*texts: str) -> str:
    reports = [parse_report(t).map(lambda s: neutralize(s, context="document")) for t in texts]
    return plan_comment(reports, 65_536, Where(RUN_URL), head="<!-- gate-report -->\n")


@pytest.mark.parametrize("reason", sorted(NO_REPORT))
def test_every_no_report_state_opens_with_its_verdict_block(reason: str) -> None:
    state = NO_REPORT[reason]
    text = no_report(reason, HEAD, run_url=RUN_URL)
    report = parse_report(text)
    assert report.alert == state.alert
    assert report.row[1] == f"**{state.word}**"
    assert [b.kind for b in report.blocks] == ["verdict"]
    blocks = parsed(comment_of(text))
    assert blocks.top[0][0] == "blockquote"
    (alert,) = alerts(blocks)
    assert alert.startswith(f"[!{state.alert}]")
    assert f"{state.word}: {state.action} (required check gate {state.check})." in alert
    assert "{" not in alert  # every placeholder filled
    assert state.word in documented_words()


def test_the_evaluating_state_is_a_verdict_block_too() -> None:
    text = evaluating_report(None, HEAD, RUN_URL)
    report = parse_report(text)
    assert (report.alert, report.row[1]) == ("NOTE", "**Evaluating**")
    (alert,) = alerts(parsed(comment_of(text)))
    assert alert.startswith("[!NOTE]")
    assert "Evaluating: wait for the result (required check gate pending)." in alert
    assert "on head ccccccc" in alert
    assert "Evaluating" in documented_words()


def test_one_word_per_state() -> None:
    """Reasons that share a word share its alert: a reader sees one colour per word."""
    by_word: dict[str, set[str]] = {}
    for state in NO_REPORT.values():
        by_word.setdefault(state.word, set()).add(state.alert)
    assert all(len(a) == 1 for a in by_word.values()), by_word
    assert set(by_word) == {"Smoke failed", "No result", "Not evaluated", "No sweep needed"}


def test_a_failed_report_beside_a_result_counts_in_the_summary() -> None:
    result = ("<!-- gate:row TIP | `a` vs `b` | **Pass** |  |  |  |  -->\n<!-- gate:verdict -->\n"
              "> [!TIP]\n> **Pass: no regression found** (required check `gate` passed).\n")
    failed = no_report("report-failed", HEAD, sweep="model-x")
    top = summary([parse_report(result), parse_report(failed)])
    assert top.startswith("> [!WARNING]\n> **1 of 2 sweeps block the merge**")
    assert "| `model-x` | **No result** |" in top


@pytest.mark.parametrize("hostile", HOSTILE)
def test_an_untrusted_sweep_name_stays_inert_and_in_its_block(hostile: str) -> None:
    clean = parse_report(no_report("report-failed", HEAD, sweep="model-x"))
    text = no_report("report-failed", HEAD, sweep=f"x --> {hostile} <!-- gate:fold -->")
    report = parse_report(text)
    assert [b.kind for b in report.blocks] == [b.kind for b in clean.blocks]
    assert report.alert == clean.alert
    assert report.row[1] == clean.row[1]
    assert_inert(comment_of(text))
