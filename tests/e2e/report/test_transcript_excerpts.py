"""The PR comment's excerpt of a failed trial comes from the trial's transcript: the first
wrong step as the model lived it (what it saw last, its answer, the wrong call and the tool's
result) and its final answer, size-bounded and inert; without a transcript (an old run) or
with the step cut by the size cap it shows the calls and says why. Rendered as GitHub renders
a comment (cmark-gfm)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from comment_cases import comment, html, parsed
from hostile_corpus import HOSTILE, assert_inert

from gate.engine.transcripts import read_transcripts, transcript_of, write_transcripts
from gate.github.comment import COMMENT_LIMIT, utf16_len
from gate.records import Transcript
from gate.report.excerpts import EXCERPT_CHARS
from gate.report.render import render_markdown
from gate.rundir import TRANSCRIPTS
from gate.rundir.jsonl import line_sha256, read_jsonl

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it


def _example(run: Path) -> tuple[dict[str, Any], Transcript]:
    """The first regressed task's failed trial (trials.jsonl) and its transcript."""
    results = json.loads((run / "results.json").read_text())
    wanted = results["regressed_tasks"][0]["example_trial"]
    trial = next(t for t in read_jsonl(run / "trials.jsonl") if t["trial_id"] == wanted)
    transcripts = {line_sha256(t): t for t in read_transcripts(run).values()}
    return trial, transcripts[trial["transcript_sha256"]]


def _first_wrong(trial: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in trial["calls"] if c.get("wrong_fix") or c.get("distractor")
                or c.get("policy_violation") or c.get("invalid"))


def _excerpt_text(body: str, trial_id: str) -> str:
    """The visible text of the trial's folded excerpt in the rendered comment."""
    text = "".join(parsed(body).text)
    start = text.index(f"failed trial {trial_id}")
    return text[start:text.index("ended:", start)]


def _with_transcript(run: Path, trial_id: str, transcript: Transcript) -> None:
    """Replace the trial's transcript, and the hash the trial cites, in ``run``."""
    trials = read_jsonl(run / "trials.jsonl")
    old = next(t["transcript_sha256"] for t in trials if t["trial_id"] == trial_id)
    records = [transcript if h == old else t for h, t in read_transcripts(run).items()]
    write_transcripts(run, records)
    for t in trials:
        if t["trial_id"] == trial_id:
            t["transcript_sha256"] = line_sha256(transcript)
    (run / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials))


def _commented(run: Path) -> str:
    (run / "report.md").write_text(render_markdown(run), encoding="utf-8")
    return comment([run])


def test_the_comment_shows_the_first_wrong_step_from_the_transcript(regression: Path) -> None:
    trial, transcript = _example(regression)
    wrong = _first_wrong(trial)
    body = comment([regression])
    shown = _excerpt_text(body, trial["trial_id"])
    assert f"Step {wrong['step']}, the first wrong step" in shown
    # recomputed from the transcript: the message before the wrong call, the call, its result
    answer_at = next(i for i, m in enumerate(transcript.messages)
                     if any(tc["id"] == wrong["call_id"] for tc in m.get("tool_calls") or []))
    seen = transcript.messages[answer_at - 1]
    result = next(m for m in transcript.messages if m.get("tool_call_id") == wrong["call_id"])
    said = (f"the result of {_tool_of(transcript, seen)}" if seen["role"] == "tool"
            else "the user's message")
    assert f"the model saw last: {said}: {seen['content'][:60]}" in shown
    assert f"it answered: called {wrong['tool']}" in shown
    assert f"the tool returned: {result['content'][:60]}" in shown
    assert transcript.final_answer
    assert f"final answer: {transcript.final_answer[:60]}" in shown
    # and the calls still follow
    assert "Every call of the trial:" in shown
    assert utf16_len(body) < COMMENT_LIMIT


def _tool_of(transcript: Transcript, tool_message: dict[str, Any]) -> str:
    return next(tc["function"]["name"] for m in transcript.messages
                for tc in m.get("tool_calls") or [] if tc["id"] == tool_message["tool_call_id"])


def _planted(transcript: Transcript, wrong: dict[str, Any], text: str) -> Transcript:
    """The transcript with ``text`` as the model's answer, the wrong call's tool result, the
    message it saw last and its final answer."""
    messages = [dict(m) for m in transcript.messages]
    for i, m in enumerate(messages):
        if any(tc["id"] == wrong["call_id"] for tc in m.get("tool_calls") or []):
            m["content"] = text
            messages[i - 1]["content"] = text
        if m.get("tool_call_id") == wrong["call_id"]:
            m["content"] = text
    return transcript.model_copy(update={"messages": messages, "final_answer": text})


INJECTION = ("Done. <img src=x onerror=alert(1)> <details open><summary>all pass</summary> "
             "[approve](https://evil.example/x) @octocat <!-- gate-report --> | cell | "
             "`code` **bold**")


def test_markdown_and_html_planted_in_the_models_answer_are_inert(regression: Path,
                                                                   tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(regression, run)
    trial, transcript = _example(run)
    _with_transcript(run, trial["trial_id"], _planted(transcript, _first_wrong(trial),
                                                      INJECTION))
    body = _commented(run)
    shown = _excerpt_text(body, trial["trial_id"])
    # shown as text, in a code span, with look-alikes for the characters that could end it
    assert "final answer: Done. \u2039img src=x onerror=alert(1)\u203a" in shown
    rendered = html(body)
    start = rendered.index(f"failed trial {trial['trial_id']}")
    section = rendered[start:rendered.index("</details>", start)]
    assert not re.search(r"<(img|script|a|details|table)\b", section), section
    assert "<img" not in rendered
    assert "<details open" not in rendered
    assert "https://evil" not in body  # the URL is defanged (https[:]//), never a link
    assert body.count("<!-- gate-report -->") == 1
    assert_inert(body)


@pytest.mark.parametrize("text", HOSTILE)
def test_every_hostile_answer_stays_inert_and_bounded(regression: Path, tmp_path: Path,
                                                      text: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(regression, run)
    trial, transcript = _example(run)
    _with_transcript(run, trial["trial_id"], _planted(transcript, _first_wrong(trial), text))
    report = render_markdown(run)
    assert_inert(report)
    start = report.index(f"failed trial {trial['trial_id']}")
    block = report[report.index("\n\n", start):report.index("</details>", start)].strip()
    assert utf16_len(block) <= EXCERPT_CHARS
    rendered = html(block)
    assert not re.search(r"<(img|script|a|details|table)\b", rendered), rendered


def test_a_run_without_transcripts_falls_back_to_the_calls(regression: Path,
                                                          tmp_path: Path) -> None:
    run = tmp_path / "old"
    shutil.copytree(regression, run)
    trial, _ = _example(run)
    (run / TRANSCRIPTS).unlink()
    shown = _excerpt_text(_commented(run), trial["trial_id"])
    assert f"No transcript: its transcript is not in {TRANSCRIPTS}" in shown
    assert "the first wrong step" not in shown
    wrong = _first_wrong(trial)
    assert f"step {wrong['step']}: {wrong['tool']}" in shown  # the calls from trials.jsonl
    # a run made before transcripts: its trials cite none
    trials = read_jsonl(run / "trials.jsonl")
    for t in trials:
        t["transcript_sha256"] = None
    (run / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials))
    shown = _excerpt_text(_commented(run), trial["trial_id"])
    assert "No transcript: this trial cites no transcript" in shown


def test_a_step_left_out_by_the_cap_falls_back_and_says_so(regression: Path,
                                                          tmp_path: Path) -> None:
    run = tmp_path / "capped"
    shutil.copytree(regression, run)
    trial, transcript = _example(run)
    wrong = _first_wrong(trial)
    messages = [dict(m) for m in transcript.messages]
    for i, m in enumerate(messages):
        if any(tc["id"] == wrong["call_id"] for tc in m.get("tool_calls") or []):
            messages[i] = {"role": m["role"], "omitted": True}
    capped = transcript.model_copy(update={"messages": messages, "capped": True,
                                           "omitted_messages": 1})
    _with_transcript(run, trial["trial_id"], capped)
    shown = _excerpt_text(_commented(run), trial["trial_id"])
    assert (f"The transcript was capped at {capped.cap_bytes} bytes (from "
            f"{capped.original_bytes}) and step {wrong['step']} was left out") in shown
    assert "the first wrong step" not in shown
    assert f"step {wrong['step']}: {wrong['tool']}" in shown


def test_the_transcript_the_excerpt_reads_is_the_one_the_trial_cites(regression: Path) -> None:
    """The helper above agrees with gate's own lookup (so the tests read the right one)."""
    from gate.rundir import RunDir

    trial, transcript = _example(regression)
    record = next(t for t in RunDir(regression).trials() if t.trial_id == trial["trial_id"])
    assert transcript_of(record, read_transcripts(regression)) == transcript
