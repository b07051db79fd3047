"""The comment's states without a sweep report (gate.report.states), rendered as GitHub renders
a comment (cmark-gfm): each opens with its verdict block, an alert whose first line is one word
of the product's verdict table, the consequence and the required check; its summary row names
the same word; untrusted names stay inert and cannot open or close a block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from comment_cases import alerts, parsed
from hostile_corpus import HOSTILE, assert_inert

import gate.report.verdict
from gate.commands import earlier_exit
from gate.engine.ledger import EarlierRun, Entry
from gate.records import ArmSpec, EarlierVerdict
from gate.report.blocks import parse_report
from gate.report.neutralize import neutralize
from gate.report.plan import Where, plan_comment, summary
from gate.report.states import NO_REPORT, earlier_run_report, evaluating_report, no_report

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


# --- a comparison the ledger holds as decided by an earlier run -----------------------------


def arms(candidate: str = "mock/cand", baseline: str = "mock/base") -> list[ArmSpec]:
    return [ArmSpec(name="candidate", model=candidate, provider="mock", prompts_tools="worktree"),
            ArmSpec(name="baseline", model=baseline, provider="mock", prompts_tools="worktree")]


@pytest.mark.parametrize(("verdict", "slos_met", "word", "alert", "code"), [
    ("pass", True, "Pass", "TIP", 0),
    ("pass", None, "SLO breach", "CAUTION", 1),  # no SLO figures: fails closed, as a sweep does
    ("pass", False, "SLO breach", "CAUTION", 1),
    ("regression", True, "Regression", "CAUTION", 1),
    ("regression", False, "Regression", "CAUTION", 1),
])
def test_a_comparison_decided_earlier_is_reported_with_that_verdict_and_its_exit_code(
        tmp_path: Path, verdict: str, slos_met: bool | None, word: str, alert: str,
        code: int) -> None:
    """The refused sweep's report.md says the earlier verdict in the product's words, and its
    required check is what the command's exit code makes it (0: passed)."""
    refused = EarlierRun(Entry("r-early", "runs/early", verdict, "ab", slos_met), 3, arms())
    out = tmp_path / "sweep-x"
    assert earlier_exit(refused, out) == code
    text = (out / "report.md").read_text()
    assert text == earlier_run_report(refused.record(), "sweep-x")
    assert EarlierVerdict.model_validate_json((out / "earlier-run.json").read_text()) == (
        refused.record())
    report = parse_report(text)
    assert (report.alert, report.row[1]) == (alert, f"**{word}**")
    assert report.row[0] == "`mock/cand` vs `mock/base` (decided by run `r-early`)"
    assert word in documented_words()
    (said,) = alerts(parsed(comment_of(text)))
    assert said.startswith(f"[!{alert}]")
    check = "passed" if code == 0 else "failed"
    assert f"{word}: {'no regression found' if code == 0 else 'do not merge'} " \
           f"(required check gate {check})." in said
    assert "decided by an earlier run, r-early in runs/early" in said
    assert "the comparison ledger holds 3 runs of this comparison" in said
    assert "gate:restart" in said
    assert "--force-restart" in said
    # a pass's SLOs are called met only when the ledger line says so
    assert ("every SLO met" in said) == (word == "Pass" and slos_met is True)


def test_the_earlier_runs_own_report_is_pointed_to_only_when_given() -> None:
    record = EarlierRun(Entry("r1", "runs/a", "pass", None, True), 1, []).record()
    assert "full report" not in earlier_run_report(record, "a")
    text = earlier_run_report(record, "a", "runs/a/report.md")
    assert "The earlier run's full report: `runs/a/report.md`." in text
    assert parse_report(text).row[0] == "`a` (decided by run `r1`)"  # no arms: the sweep
    assert "holds 1 run of this comparison" in text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_an_untrusted_ledger_line_stays_inert_and_in_its_block(hostile: str) -> None:
    """The ledger comes from a cache: its run id and directory, like model ids, are untrusted."""
    clean = parse_report(earlier_run_report(
        EarlierRun(Entry("r1", "runs/a", "regression", None, True), 2, arms()).record()))
    spoof = f"x --> {hostile} <!-- gate:fold -->"
    record = EarlierVerdict(run_id=spoof, out=spoof, verdict="regression", slos_met=True,
                            runs=2, arms=arms(spoof, hostile))
    for text in (earlier_run_report(record, spoof, spoof),
                 earlier_run_report(record.model_copy(update={"arms": []}), spoof, spoof)):
        report = parse_report(text)
        assert [b.kind for b in report.blocks] == [b.kind for b in clean.blocks]
        assert (report.alert, report.row[1]) == (clean.alert, clean.row[1])
        assert len(report.row) == len(clean.row)
        assert_inert(text)
        assert_inert(comment_of(text))
