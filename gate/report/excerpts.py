"""What failed trials did, from trials.jsonl: each regressed task's first wrong step, the calls
of one failed trial, and the trace ids of failed trials.

Tool names and arguments are the model's (untrusted): each is a neutralised code span.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from markupsafe import Markup

from gate.records import Trial
from gate.report.neutralize import neutralize
from gate.rundir import RunDir

MAX_EXCERPTS = 10  # regressed tasks with a trace excerpt
MAX_CALLS = 8  # calls shown per excerpt
ARGS_CHARS = 80
STEP_CALL_CHARS = 48  # a call shown in a first-wrong-step cell
SAFE_URL = re.compile(r"https?://[^\s()<>\[\]`\"'|@]+")
TRACE_URL_VAR = "GATE_TRACE_URL"  # e.g. https://langfuse.example/project/p/traces/{trace_id}
MAX_TRACE_LINKS = 10


def failed_trials(run_dir: Path, wanted: set[str]) -> dict[str, Trial]:
    """The trials of ``wanted`` ids, read once from trials.jsonl."""
    if not wanted:
        return {}
    out: dict[str, Trial] = {}
    for t in RunDir(run_dir).trials():
        if t.trial_id in wanted and t.trial_id not in out:
            out[t.trial_id] = t
    return out


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


def excerpt(trial: Trial) -> Markup:
    calls = list(trial.calls or [])
    lines = [_call_line(c) for c in calls[:MAX_CALLS]]
    if len(calls) > MAX_CALLS:
        lines.append(f"- … {len(calls) - MAX_CALLS} more call(s)")
    if not calls:
        lines.append("- no tool call")
    ended = neutralize(trial.ended or "unknown", limit=40)
    lines.append(f"- ended: {ended} after {int(trial.steps or 0)} step(s)")
    return Markup("\n".join(lines))


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

