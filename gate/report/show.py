"""``gate show --run DIR [--trial ID | --failed]``: trial transcripts for a person.

Each trial: its outcome, the instruction, every message in order (each model call marked with
its step, response id and finish reason; tool calls with their arguments; tool results with
their duration), and the final answer. On a terminal it is drawn with rich (a panel per trial);
elsewhere (CI logs, pipes) it is plain text. Either way every line of model, provider or tool
text passes the one neutralising function (control characters and escape sequences gone, URLs
and mentions defanged) and is indented, so nothing in it can drive the terminal or pass for a
CI workflow command.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from gate.engine.transcripts import read_transcripts, transcript_of
from gate.errors import ConfigError
from gate.records import Transcript, Trial
from gate.report.neutralize import neutralize
from gate.rundir import TRANSCRIPTS, RunDir

SYSTEM_CHARS = 400  # the system prompt is the same in every trial: its start is enough
INDENT = "    "


def select_trials(run_dir: Path, trial_id: str | None, failed: bool) -> list[Trial]:
    """The trials to show; ``ConfigError`` when there is no run or no such trial."""
    run = RunDir(run_dir)
    if not run.trials_path.exists():
        raise ConfigError.one(str(run_dir), None,
                              f"no {run.trials_path.name}: not a run directory")
    trials = run.trials()
    if trial_id is not None:
        chosen = [t for t in trials if t.trial_id == trial_id]
        if not chosen:
            raise ConfigError.one(str(run_dir), None, f"no trial {trial_id!r} in this run")
        return chosen
    if failed:
        return [t for t in trials if t.status != "scored" or not t.success]
    return trials


def _safe(text: object) -> list[str]:
    """Untrusted text as inert lines (one neutralised line per line of the text)."""
    lines = str(text).splitlines() or [""]
    return [neutralize(line, context="plain", limit=None).replace("::", ": :")
            for line in lines]


def outcome_line(trial: Trial) -> str:
    if trial.status != "scored":
        kind = trial.provider_error.kind if trial.provider_error else trial.status
        return f"{trial.status} ({kind})"
    verdict = "success" if trial.success else "failure"
    return (f"{verdict}, reward {trial.reward if trial.reward is not None else '-'}, "
            f"ended {trial.ended}, {trial.steps} steps, {trial.tool_calls} tool calls")


def _call_text(tc: Mapping[str, Any]) -> str:
    fn = tc.get("function") or {}
    args = fn.get("arguments")
    shown = args if isinstance(args, str) else json.dumps(args, sort_keys=True)
    return f"-> {fn.get('name')}({shown})  [{tc.get('id')}]"


def transcript_lines(transcript: Transcript) -> Iterator[tuple[str, str]]:
    """(style, text) pairs: the transcript in reading order; texts are already inert."""
    steps = {s.answer: s for s in transcript.steps if s.answer is not None}
    durations = {t.call_id: t.duration_s for t in transcript.tool_calls}
    for i, m in enumerate(transcript.messages):
        role = str(m.get("role"))
        if i in steps:
            s = steps[i]
            yield "step", (f"--- step {s.step}: response {_safe(s.response_id)[0]}, "
                           f"finish reason {_safe(s.finish_reason)[0]}")
        if m.get("omitted"):
            yield "dim", f"{role}: [left out by the size cap]"
            continue
        content = m.get("content")
        if role == "system" and isinstance(content, str) and len(content) > SYSTEM_CHARS:
            content = content[:SYSTEM_CHARS] + f"... [{len(content) - SYSTEM_CHARS} more]"
        if role == "tool":
            took = durations.get(str(m.get("tool_call_id")))
            head = f"tool [{_safe(m.get('tool_call_id'))[0]}]" + (
                f" ({took:.3f} s)" if took is not None else "")
        else:
            head = role
        yield role, f"{head}:"
        if content:
            text = content if isinstance(content, str) else json.dumps(content)
            for line in _safe(text):
                yield "text", INDENT + line
        for tc in m.get("tool_calls") or []:
            if isinstance(tc, Mapping):
                for line in _safe(_call_text(tc)):
                    yield "call", INDENT + line
    yield "answer", "final answer:"
    for line in _safe(transcript.final_answer if transcript.final_answer is not None
                      else "(none)"):
        yield "text", INDENT + line
    if transcript.capped:
        yield "dim", (f"(capped at {transcript.cap_bytes} bytes from "
                      f"{transcript.original_bytes}; {transcript.omitted_messages} "
                      "message(s) left out, long texts cut)")


def _trial_header(trial: Trial) -> str:
    return f"{_safe(trial.trial_id)[0]}  {_safe(trial.model)[0]}: {outcome_line(trial)}"


def show_plain(trials: list[Trial], transcripts: dict[str, Transcript], out: TextIO) -> None:
    for trial in trials:
        out.write(f"=== {_trial_header(trial)}\n")
        transcript = transcript_of(trial, transcripts)
        if transcript is None:
            out.write(f"{INDENT}(no transcript in {TRANSCRIPTS})\n\n")
            continue
        out.write(f"instruction:\n{INDENT}" + f"\n{INDENT}".join(
            _safe(transcript.instruction)) + "\n")
        for _style, text in transcript_lines(transcript):
            out.write(text + "\n")
        out.write("\n")


STYLES = {"step": "bold cyan", "system": "magenta", "user": "green", "assistant": "bold blue",
          "tool": "yellow", "call": "blue", "answer": "bold", "dim": "dim", "text": ""}


def show_rich(trials: list[Trial], transcripts: dict[str, Transcript], out: TextIO) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = Console(file=out)
    for trial in trials:
        body = Text()
        transcript = transcript_of(trial, transcripts)
        if transcript is None:
            body.append(f"(no transcript in {TRANSCRIPTS})", style="dim")
        else:
            body.append("instruction: ", style="bold")
            body.append("\n".join(_safe(transcript.instruction)) + "\n")
            for style, text in transcript_lines(transcript):
                body.append(text + "\n", style=STYLES.get(style, ""))
        color = "green" if trial.status == "scored" and trial.success else "red"
        console.print(Panel(body, title=Text(_trial_header(trial)), border_style=color,
                            title_align="left"))


def show(run_dir: Path, trial_id: str | None, failed: bool, out: TextIO | None = None) -> int:
    """Print the chosen trials' transcripts; the number of trials shown."""
    stream = out or sys.stdout
    trials = select_trials(run_dir, trial_id, failed)
    transcripts = read_transcripts(run_dir)
    if stream.isatty():
        show_rich(trials, transcripts, stream)
    else:
        show_plain(trials, transcripts, stream)
    return len(trials)
