"""transcripts.jsonl.gz in process: a torn member is dropped and a corrupt one refused, the
transcript is durable before its trial line, a large one is capped and says so, a rewritten
history is kept whole (through whole runs: tests/e2e/engine/test_transcripts.py)."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
from pathlib import Path

import pytest

from gate.agent.transcript import TranscriptRecorder
from gate.engine.transcripts import TRANSCRIPTS, build_transcript
from gate.errors import RecordError
from gate.records import Record
from gate.rundir.jsonl import (
    CompressedJsonlWriter,
    JsonlWriter,
    read_compressed_jsonl,
)


def test_a_torn_transcript_is_dropped_and_a_corrupt_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"

    class T(Record):
        i: int

    with CompressedJsonlWriter(path, T) as w:
        for i in range(3):
            w.write(T(i=i))
    whole = path.read_bytes()
    path.write_bytes(whole[:-5])  # a crash in the middle of the last member
    assert [r.i for r in read_compressed_jsonl(path, T)] == [0, 1]
    with CompressedJsonlWriter(path, T) as w:  # reopening cuts the torn member off
        w.write(T(i=9))
    assert [r.i for r in read_compressed_jsonl(path, T)] == [0, 1, 9]
    assert gzip.decompress(path.read_bytes()).decode().count("\n") == 3  # gzip -dc reads it
    data = bytearray(path.read_bytes())
    data[12] ^= 0xFF  # inside the first member
    path.write_bytes(bytes(data))
    with pytest.raises(RecordError):
        read_compressed_jsonl(path, T)


def test_the_transcript_is_on_disk_before_its_trial_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    audit_path, tx_path, trials_path = (tmp_path / n for n in (
        "audit.jsonl", TRANSCRIPTS, "trials.jsonl"))
    order: list[tuple[str, int]] = []  # per fsync: which file, trial lines on disk then
    real = os.fsync

    def spy(fd: int) -> None:
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        lines = trials_path.read_bytes().count(b"\n") if trials_path.exists() else 0
        order.append((name, lines))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)

    class A(Record):
        a: int

    class I(Record):  # noqa: E742
        i: int

    class T(Record):
        t: int

    async def go() -> None:
        with JsonlWriter(audit_path, A) as audit, CompressedJsonlWriter(tx_path, T) as tx, \
                JsonlWriter(trials_path, I) as trials:
            audit.append(A(a=1))
            tx.append(T(t=1))
            await trials.commit_after((audit, tx), I(i=1))

    asyncio.run(go())
    assert sorted(order[:2]) == [("audit.jsonl", 0), (TRANSCRIPTS, 0)]
    assert order[2] == ("trials.jsonl", 1)


def _recorder(n_steps: int, text_chars: int) -> TranscriptRecorder:
    rec = TranscriptRecorder(clock=lambda: 1_800_000_000.0)
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "do it"}]
    for step in range(1, n_steps + 1):
        rec.request(step, messages)
        answer = {"role": "assistant", "content": "x" * text_chars,
                  "tool_calls": [{"id": f"c{step}", "type": "function",
                                  "function": {"name": "t", "arguments": "{}"}}]}
        messages.append(answer)
        rec.answer(answer, f"r{step}", "tool_calls")
        messages.append({"role": "tool", "tool_call_id": f"c{step}", "content": "y" * 50})
        rec.tool_result(messages[-1])
        rec.tool(step, f"c{step}", "t", 1_800_000_000.0, 1_800_000_000.5)
    return rec


@pytest.mark.slow  # end to end: not in the fast loop
def test_a_large_transcript_is_capped_and_says_so() -> None:
    small = build_transcript(_recorder(3, 100), trial_id="a/t/r1", arm="a", task="t",
                             round_no=1, instruction="do it", cap_bytes=10_000)
    assert not small.capped
    assert small.original_bytes < 10_000
    # each request repeats the conversation; the transcript keeps each message once
    assert len(small.messages) == 2 + 2 * 3
    assert [(s.seen_from, s.seen_to, s.answer) for s in small.steps] == [
        (0, 2, 2), (0, 4, 4), (0, 6, 6)]

    long_texts = build_transcript(_recorder(5, 20_000), trial_id="a/t/r1", arm="a", task="t",
                                  round_no=1, instruction="do it", cap_bytes=20_000)
    assert long_texts.capped
    assert long_texts.original_bytes > 100_000
    assert len(json.dumps(long_texts.to_json(), separators=(",", ":"))) <= 20_000
    assert long_texts.omitted_messages == 0  # cutting the long texts was enough
    assert "[cut by gate:" in long_texts.messages[2]["content"]

    many = build_transcript(_recorder(200, 10), trial_id="a/t/r1", arm="a", task="t",
                            round_no=1, instruction="do it", cap_bytes=60_000)
    assert many.capped
    assert many.omitted_messages > 0
    assert len(json.dumps(many.to_json(), separators=(",", ":"))) <= 60_000
    assert len(many.messages) == 2 + 2 * 200  # placeholders keep the steps' indices right
    assert many.messages[0]["content"] == "sys"
    assert many.messages[-1]["content"] == "y" * 50
    assert len(many.steps) == 200

    head_only = build_transcript(_recorder(200, 10), trial_id="a/t/r1", arm="a", task="t",
                                 round_no=1, instruction="do it", cap_bytes=30_000)
    assert head_only.capped
    assert len(json.dumps(head_only.to_json(), separators=(",", ":"))) <= 30_000
    assert (head_only.messages, head_only.steps, head_only.omitted_messages) == ([], [], 402)


def test_a_rewritten_history_is_kept_whole() -> None:
    rec = TranscriptRecorder()
    rec.request(1, [{"role": "user", "content": "a"}])
    rec.answer({"role": "assistant", "content": "b"}, "r1", "stop")
    # an SDK re-serialises the assistant turn with other empty fields: still the same turn
    rec.request(2, [{"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b", "refusal": None, "tool_calls": []},
                    {"role": "user", "content": "c"}])
    rec.request(3, [{"role": "user", "content": "summary"}])  # history rewritten
    assert [m["content"] for m in rec.messages] == ["a", "b", "c", "summary"]
    assert [(s["seen_from"], s["seen_to"]) for s in rec.steps] == [(0, 1), (0, 3), (3, 4)]
