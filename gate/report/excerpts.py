"""What failed trials did: each regressed task's first wrong step (trials.jsonl), an excerpt of
one failed trial's transcript (transcripts.jsonl.gz) with its calls, and the trace ids of failed
trials.

The excerpt of a failed trial shows its first wrong step as the model lived it: the last
message the model saw before the step, its answer, the wrong tool call and what the tool
returned, then the trial's final answer, followed by every call of the trial. A trial without a
transcript (a run made before gate kept them, or a line that is gone) or whose step the size
cap left out shows its calls alone, and says why.

Everything in an excerpt comes from a model, a provider or a tool (untrusted): tool names,
arguments, tool results and the model's text are neutralised code spans (look-alikes for the
characters that could end one), each piece is capped, and the excerpt as a whole is kept
under ``EXCERPT_CHARS`` (UTF-16 code units, as GitHub counts) so that the PR comment's plan
(gate.report.plan) has blocks of a known size to work with.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

from markupsafe import Markup

from gate.engine.transcripts import read_transcripts, transcript_of
from gate.records import Transcript, TranscriptStep, Trial
from gate.report.neutralize import neutralize
from gate.rundir import TRANSCRIPTS, RunDir

MAX_EXCERPTS = 10  # regressed tasks with a trace excerpt
MAX_CALLS = 8  # calls shown per excerpt
ARGS_CHARS = 80
STEP_CALL_CHARS = 48  # a call shown in a first-wrong-step cell
SAFE_URL = re.compile(r"https?://[^\s()<>\[\]`\"'|@]+")
TRACE_URL_VAR = "GATE_TRACE_URL"  # e.g. https://langfuse.example/project/p/traces/{trace_id}
MAX_TRACE_LINKS = 10
TEXT_CHARS = 240  # a message shown in an excerpt (before escaping)
EXCERPT_CHARS = 3000  # one excerpt, whole (UTF-16 code units)


def failed_trials(run_dir: Path, wanted: set[str]) -> dict[str, Trial]:
    """The trials of ``wanted`` ids, read once from trials.jsonl."""
    if not wanted:
        return {}
    out: dict[str, Trial] = {}
    for t in RunDir(run_dir).trials():
        if t.trial_id in wanted and t.trial_id not in out:
            out[t.trial_id] = t
    return out


def excerpts(run_dir: Path, trials: dict[str, Trial], shown: list[str]) -> dict[str, Markup]:
    """The excerpt of each ``shown`` trial id (those in ``trials``), from its transcript."""
    wanted = [trials[k] for k in shown if k in trials]
    transcripts = read_transcripts(run_dir) if wanted else {}
    return {t.trial_id: excerpt(t, transcript_of(t, transcripts)) for t in wanted}


def _flags(call: dict[str, Any]) -> list[str]:
    flags = []
    if call.get("invalid"):
        flags.append("invalid: " + neutralize(call["invalid"], limit=30))
    if call.get("wrong_fix"):
        flags.append("wrong fix")
    if call.get("distractor"):
        flags.append("distractor")
    if call.get("policy_violation"):
        flags.append("policy violation: " + neutralize(call["policy_violation"], limit=60))
    return flags


def _call_text(call: dict[str, Any], args_chars: int) -> str:
    tool = neutralize(call.get("tool") or "?", context="code", limit=40)
    args = call.get("args")
    shown = "" if args is None else " " + neutralize(
        json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        context="code", limit=args_chars)
    return f"{tool}{shown}"


def _short_call(call: dict[str, Any]) -> str:
    """``tool value value``: one code span, as a reader would say the call."""
    args = call.get("args")
    values = args.values() if isinstance(args, dict) else [] if args is None else [args]
    words = [str(call.get("tool") or "?")]
    words += [v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]
    return neutralize(" ".join(words), context="code", limit=STEP_CALL_CHARS)


def first_wrong_step(trial: Trial | None) -> Markup:
    """The first call flagged wrong (wrong fix, policy, distractor, invalid), else how the
    trial ended."""
    if trial is None:
        return Markup("n/a")
    for call in trial.calls or []:
        flags = _flags(call)
        if flags:
            step = int(call.get("step") or 0)
            return Markup(f"step {step} {_short_call(call)}: {'; '.join(flags)}")
    ended = neutralize((trial.ended or "unknown").replace("_", " "), limit=40)
    return Markup(f"no flagged call; ended: {ended} after {int(trial.steps or 0)} step(s)")


def excerpt(trial: Trial, transcript: Transcript | None = None) -> Markup:
    """The failed trial's first wrong step from its transcript, then its calls, within
    ``EXCERPT_CHARS``; without a transcript the calls alone, with the reason."""
    lines = _transcript_part(trial, transcript)
    calls = list(trial.calls or [])
    lines += ["", "Every call of the trial:"] if lines else []
    lines += [_call_line(c) for c in calls[:MAX_CALLS]]
    if len(calls) > MAX_CALLS:
        lines.append(f"- … {len(calls) - MAX_CALLS} more call(s)")
    if not calls:
        lines.append("- no tool call")
    ended = neutralize(trial.ended or "unknown", limit=40)
    lines.append(f"- ended: {ended} after {int(trial.steps or 0)} step(s)")
    return Markup("\n".join(_bounded(lines, trial)))


def _bounded(lines: list[str], trial: Trial) -> list[str]:
    """``lines`` cut (at a line) to fit ``EXCERPT_CHARS``, with a pointer to the rest."""
    def size(line: str) -> int:
        return len(line.encode("utf-16-le")) // 2 + 1

    if sum(size(x) for x in lines) <= EXCERPT_CHARS:
        return lines
    who = neutralize(trial.trial_id, context="code", limit=120)
    note = f"- … more of this trial: `gate show --run DIR --trial` {who}"
    kept, used = [], size(note)
    for line in lines:
        if used + size(line) > EXCERPT_CHARS:
            break
        kept.append(line)
        used += size(line)
    return [*kept, note]


def _transcript_part(trial: Trial, transcript: Transcript | None) -> list[str]:
    """The lines from the transcript (none when there is no transcript: a note instead)."""
    if transcript is None:
        why = ("this trial cites no transcript (a run made before gate kept them)"
               if trial.transcript_sha256 is None else
               f"its transcript is not in {TRANSCRIPTS}")
        return [f"*No transcript: {why}; the calls below are from trials.jsonl.*", ""]
    wrong = next((c for c in trial.calls or [] if _flags(c)), None)
    step = _step_of(transcript, wrong)
    if step is None or _omitted(transcript, step):
        return [_capped_note(transcript, wrong), ""]
    if wrong is not None:
        head = (f"**Step {step.step}, the first wrong step** ({'; '.join(_flags(wrong))}), "
                "from the trial's transcript:")
    else:
        head = f"**Step {step.step}, the last step** (no call was flagged), from the transcript:"
    lines = [head, f"- the model saw last: {_seen_last(transcript, step)}"]
    answer = transcript.messages[step.answer] if step.answer is not None else None
    lines.append(f"- it answered: {_answer_text(answer)}")
    if wrong is not None and wrong.get("call_id"):
        result = _tool_result(transcript, str(wrong["call_id"]))
        shown = "(no result recorded)" if result is None else _content(result)
        lines.append(f"- the tool returned: {shown}")
    final = transcript.final_answer
    lines.append("- final answer: " + ("(none)" if final is None else
                                       _quoted(final)))
    if transcript.capped:
        lines.append(f"- (the transcript was capped at {transcript.cap_bytes} bytes from "
                     f"{transcript.original_bytes}: long texts are cut)")
    return lines


def _step_of(transcript: Transcript, call: dict[str, Any] | None) -> TranscriptStep | None:
    """The model call that made ``call`` (by its call id, else its step number); the last
    answered step when ``call`` is None."""
    answered = [s for s in transcript.steps if s.answer is not None]
    if call is None:
        return answered[-1] if answered else None
    call_id = call.get("call_id")
    for s in answered:
        at = s.answer if s.answer is not None and s.answer < len(transcript.messages) else None
        if call_id and at is not None and call_id in _call_ids(transcript.messages[at]):
            return s
    return next((s for s in answered if s.step == call.get("step")), None)


def _omitted(transcript: Transcript, step: TranscriptStep) -> bool:
    wanted = [step.seen_to - 1, step.answer]
    return any(i is None or not 0 <= i < len(transcript.messages)
               or transcript.messages[i].get("omitted") for i in wanted)


def _capped_note(transcript: Transcript, call: dict[str, Any] | None) -> str:
    where = f"step {int(call.get('step') or 0)}" if call is not None else "its last step"
    if transcript.capped:
        return (f"*The transcript was capped at {transcript.cap_bytes} bytes (from "
                f"{transcript.original_bytes}) and {where} was left out; the calls below are "
                "from trials.jsonl.*")
    return f"*The transcript does not hold {where}; the calls below are from trials.jsonl.*"


def _call_ids(message: dict[str, Any]) -> list[str]:
    return [str(tc.get("id")) for tc in message.get("tool_calls") or [] if isinstance(tc, dict)]


def _tool_result(transcript: Transcript, call_id: str) -> dict[str, Any] | None:
    return next((m for m in transcript.messages
                 if m.get("role") == "tool" and m.get("tool_call_id") == call_id), None)


def _tool_name(transcript: Transcript, call_id: object) -> str | None:
    for m in transcript.messages:
        for tc in m.get("tool_calls") or []:
            if isinstance(tc, dict) and tc.get("id") == call_id:
                return str((tc.get("function") or {}).get("name"))
    return None


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if content is None or content == "":
        return "(empty)"
    return _quoted(content if isinstance(content, str) else
                   json.dumps(content, ensure_ascii=False))


def _quoted(text: str) -> str:
    """Model, provider or tool text as one neutralised code span: shown as written (an
    e-mail address stays one), never read as markdown or HTML."""
    return neutralize(text, context="code", limit=TEXT_CHARS)


def _seen_last(transcript: Transcript, step: TranscriptStep) -> str:
    message = transcript.messages[step.seen_to - 1]
    role = message.get("role")
    if role == "tool":
        name = _tool_name(transcript, message.get("tool_call_id")) or "?"
        return (f"the result of {neutralize(name, context='code', limit=40)}: "
                f"{_content(message)}")
    said = {"user": "the user's message", "system": "the system prompt",
            "assistant": "its own earlier answer"}.get(str(role), "a message")
    return f"{said}: {_content(message)}"


def _answer_text(message: dict[str, Any] | None) -> str:
    if message is None:
        return "(no answer came back)"
    parts = []
    if message.get("content"):
        parts.append(_content(message))
    for tc in message.get("tool_calls") or []:
        if isinstance(tc, dict):
            fn = tc.get("function") or {}
            args = fn.get("arguments")
            call = {"tool": fn.get("name"), "args": args if isinstance(args, str | dict)
                    else None}
            parts.append("called " + _call_text(_parsed(call), ARGS_CHARS))
    return "; ".join(parts) or "(empty)"


def _parsed(call: dict[str, Any]) -> dict[str, Any]:
    """A call whose arguments are the JSON text the model wrote, as trials.jsonl holds it."""
    args = call.get("args")
    if isinstance(args, str):
        with contextlib.suppress(ValueError):
            call = {**call, "args": json.loads(args)}
    return call


def _call_line(call: dict[str, Any]) -> str:
    flags = _flags(call)
    note = f" — {'; '.join(flags)}" if flags else ""
    step = int(call.get("step") or 0)
    return f"- step {step}: {_call_text(call, ARGS_CHARS)}{note}"


def failed_traces(run_dir: Path) -> list[dict[str, str]]:
    """The OpenTelemetry trace ids of the first failed trials (from trials.jsonl), with a link
    when ``GATE_TRACE_URL`` gives the backend's address pattern."""
    template = os.environ.get(TRACE_URL_VAR, "")
    out: list[dict[str, str]] = []
    for t in RunDir(run_dir).trials():
        if t.status != "scored" or t.success or not t.trace_id:
            continue
        trace_id = t.trace_id
        if not all(c in "0123456789abcdef" for c in trace_id):
            continue
        url = template.replace("{trace_id}", trace_id) if "{trace_id}" in template else ""
        # The address comes from the runner's environment, not from the run: it is a link
        # (Markup) when it is a plain http(s) URL, else no link at all.
        link = Markup(url) if SAFE_URL.fullmatch(url) else ""
        out.append({"trial": t.trial_id, "trace_id": trace_id, "url": link})
        if len(out) == MAX_TRACE_LINKS:
            break
    return out

