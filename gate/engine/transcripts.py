"""transcripts.jsonl.gz: one ``Transcript`` per trial, redacted, capped, hashed into the trial.

The engine builds each trial's transcript from its recorder (gate.agent.transcript) when the
trial ends, whatever the ending (scored, lost to the provider, an environment error), appends
it before the trial line and makes both durable together (``commit_after``). The trial's
``transcript_sha256`` is the SHA-256 of the transcript's JSON line, so ``gate verify`` finds a
changed transcript. A crash between the two leaves a transcript no trial cites; the trial is
run again on ``--resume`` and cites its new one.

Every string passes ``gate.providers.redact.redact`` (the provider keys gate holds never reach
the file). A transcript larger than ``CAP_BYTES`` is cut: long strings first, then messages in
the middle replaced by a placeholder, and if that is not enough (thousands of steps) only the
record's head is kept; the record says so (``capped``, ``original_bytes``,
``omitted_messages``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gate.agent.transcript import TranscriptRecorder
from gate.providers.redact import redact
from gate.records import Transcript, Trial
from gate.rundir import TRANSCRIPTS
from gate.rundir.jsonl import compressed_line, line_sha256, read_compressed_jsonl

CAP_BYTES = 256 * 1024  # per trial; recorded in each transcript as cap_bytes
CUTS = (8192, 2048, 512, 128)  # string lengths tried, longest first, when over the cap
KEEP_ENDS = 2  # messages kept whole at each end when the middle must go


def _scrub(value: Any) -> Any:
    """``value`` with every registered secret masked in every string (keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_scrub(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def _cut(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}... [cut by gate: {len(value) - limit} more characters]"
    if isinstance(value, dict):
        return {k: _cut(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v, limit) for v in value]
    return value


def _size(record: Transcript) -> int:
    return len(json.dumps(record.to_json(), sort_keys=True, separators=(",", ":")))


def build_transcript(
    recorder: TranscriptRecorder, *, trial_id: str, arm: str, task: str, round_no: int,
    instruction: str, cap_bytes: int = CAP_BYTES,
) -> Transcript:
    """The trial's transcript record, redacted and within ``cap_bytes``."""
    record = Transcript.model_validate(_scrub({
        "trial_id": trial_id, "arm": arm, "task": task, "round": round_no,
        "instruction": instruction, "messages": recorder.messages, "steps": recorder.steps,
        "tool_calls": recorder.tool_calls, "final_answer": recorder.final_answer,
        "cap_bytes": cap_bytes, "original_bytes": 0, "capped": False, "omitted_messages": 0,
    }))
    original = _size(record)
    record = record.model_copy(update={"original_bytes": original})
    if original <= cap_bytes:
        return record
    return _capped(record, cap_bytes)


def _capped(record: Transcript, cap_bytes: int) -> Transcript:
    out = record.model_copy(update={"capped": True})
    for limit in CUTS:
        out = out.model_copy(update={
            "messages": _cut(record.messages, limit), "instruction": _cut(record.instruction,
                                                                            limit),
            "final_answer": _cut(record.final_answer, limit)})
        if _size(out) <= cap_bytes:
            return out
    messages = list(out.messages)
    omitted = 0
    middle = list(range(KEEP_ENDS, max(KEEP_ENDS, len(messages) - KEEP_ENDS)))
    while _size(out) > cap_bytes and middle:
        i = middle.pop(len(middle) // 2)
        messages[i] = {"role": messages[i].get("role"), "omitted": True}
        omitted += 1
        out = out.model_copy(update={"messages": messages, "omitted_messages": omitted})
    if _size(out) > cap_bytes:  # still over (very many steps): only the header stays
        out = out.model_copy(update={
            "messages": [], "steps": [], "tool_calls": [], "omitted_messages": len(messages),
            "final_answer": _cut(out.final_answer, 64), "instruction": _cut(out.instruction,
                                                                            64)})
    return out


def read_transcripts(run_dir: Path) -> dict[str, Transcript]:
    """Every transcript of a run directory by the SHA-256 of its line."""
    return {line_sha256(t): t for t in read_compressed_jsonl(run_dir / TRANSCRIPTS, Transcript)}


def write_transcripts(run_dir: Path, records: Iterable[Transcript]) -> None:
    """Replace the run's transcripts with ``records`` at once (a merge of shards)."""
    path = run_dir / TRANSCRIPTS
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"".join(compressed_line(r) for r in records))
    os.replace(tmp, path)


def transcript_of(trial: Trial, transcripts: dict[str, Transcript]) -> Transcript | None:
    """The transcript ``trial`` cites, when it cites one that is there."""
    if trial.transcript_sha256 is None:
        return None
    return transcripts.get(trial.transcript_sha256)


def check_transcripts(trials: Iterable[Trial], run_dir: Path) -> list[str]:
    """``gate verify``'s check: every trial cites a transcript whose line has that hash."""
    transcripts = read_transcripts(run_dir)
    problems = []
    for t in trials:
        if t.transcript_sha256 is None:
            problems.append(f"trial {t.trial_id}: no transcript")
        elif t.transcript_sha256 not in transcripts:
            problems.append(f"trial {t.trial_id}: its transcript (sha256 "
                            f"{t.transcript_sha256[:12]}...) is not in {TRANSCRIPTS}: "
                            "changed or missing")
    return problems
