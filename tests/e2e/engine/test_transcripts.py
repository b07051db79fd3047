"""transcripts.jsonl.gz: every trial has its transcript, the provider key never reaches it,
``gate verify`` catches a changed one, it is durable before its trial, capped with the cap
recorded, and ``gate show`` prints it for a person without letting model text drive the
terminal or the CI log."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
from pathlib import Path

import pytest

from gate.agent.transcript import TranscriptRecorder
from gate.cli import main
from gate.config.schema import FaultConfig
from gate.engine.transcripts import TRANSCRIPTS, build_transcript, read_transcripts
from gate.errors import RecordError
from gate.records import Record, Transcript, Trial
from gate.rundir.jsonl import (
    CompressedJsonlWriter,
    JsonlWriter,
    line_sha256,
    read_compressed_jsonl,
    read_jsonl,
)
from gate.simulate.models import MOCK_PRICES, MockProvider
from gate.simulate.server import MockServer, ServerOptions

KEY = "sk-or-v1-PLANTED-KEY-0123456789abcdef"


def _plant_key_in_an_instruction(project_dir: Path) -> str:
    """A user pasted the key into a task: it reaches the model's messages."""
    task = project_dir / "tasks" / "incident" / "incident-easy-02-db-read-only.yaml"
    text = task.read_text()
    task.write_text(text.replace("instruction: Checkout fails",
                                 f"instruction: Our key is {KEY}. Checkout fails", 1))
    return "incident-easy-02-db-read-only"


def _transcript_texts(run: Path) -> str:
    return gzip.decompress((run / TRANSCRIPTS).read_bytes()).decode()


def test_every_trial_has_its_transcript_and_the_key_never_appears(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gate.project.load import load_project

    task = _plant_key_in_an_instruction(project_dir)
    monkeypatch.setenv("GATE_TEST_KEY", KEY)
    backend = MockProvider(load_project(project_dir / "gate.yaml"))
    faults = FaultConfig(rate=0.2, kinds=["429", "500", "error_in_body"])
    with MockServer(backend, MOCK_PRICES, faults, seed=3,
                    options=ServerOptions(api_key=KEY, retry_after_s=0.01)) as server:
        cfg = project_dir / "gate.yaml"
        cfg.write_text(cfg.read_text().replace("providers:\n", (
            "providers:\n  local:\n    type: openai\n"
            f"    base_url: {server.base_url}\n    api_key_env: GATE_TEST_KEY\n"
            "    retry: {initial_wait_s: 0.01, max_wait_s: 0.02, jitter_s: 0, cooldown_s: 0.05,"
            " max_attempts: 2}\n"), 1))
        out = tmp_path / "run"
        code = main(["run", "--config", str(cfg), "--model", "mock/expert", "--provider",
                     "local", "--rounds", "1", "--out", str(out)])
    assert code in (0, 3)
    trials = read_jsonl(out / "trials.jsonl", Trial)
    transcripts = read_transcripts(out)
    assert len(trials) == 40
    assert {t.status for t in trials} == {"scored", "provider_error"}  # lost ones too
    for t in trials:
        assert t.transcript_sha256 is not None
        transcript = transcripts[t.transcript_sha256]
        assert (transcript.trial_id, transcript.arm, transcript.round) == (
            t.trial_id, t.arm, t.round)
        assert transcript.messages[0]["role"] == "system"
        answered = [s.response_id for s in transcript.steps if s.response_id]
        if t.status == "scored":  # the answers the trial cites, in order
            assert answered == t.response_ids
            assert len(transcript.tool_calls) == t.tool_calls
        else:  # lost to the provider: the request it was making is there, unanswered
            assert transcript.steps[-1].answer is None
    # the planted key reached the model's messages, masked, and nowhere in the file
    planted = next(tr for tr in transcripts.values() if tr.task == task)
    assert "Our key is ***." in planted.instruction
    assert "Our key is ***." in planted.messages[1]["content"]
    raw = _transcript_texts(out)
    assert KEY not in raw
    assert KEY[8:] not in raw
    assert main(["verify", "--run", str(out)]) == 0


def test_verify_fails_when_a_transcript_is_altered(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    assert main(["run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/expert",
                 "--rounds", "1", "--out", str(out)]) == 0
    assert main(["verify", "--run", str(out)]) == 0
    path = out / TRANSCRIPTS
    records = read_compressed_jsonl(path, Transcript)
    victim = records[7]
    answer = next(i for i, m in enumerate(victim.messages) if m["role"] == "assistant")
    changed = [dict(m) for m in victim.messages]
    changed[answer]["content"] = "I did it all perfectly."
    records[7] = victim.model_copy(update={"messages": changed})
    with CompressedJsonlWriter(path.with_name("new.gz"), Transcript) as w:
        for r in records:
            w.write(r)
    os.replace(path.with_name("new.gz"), path)
    capsys.readouterr()
    assert main(["verify", "--run", str(out)]) == 1
    printed = capsys.readouterr().out
    assert f"trial {victim.trial_id}: its transcript" in printed
    assert printed.count("MISMATCH") == 1


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


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_show_prints_failed_trials_inert_in_ci_and_drawn_on_a_terminal(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from gate.report.show import show

    out = tmp_path / "run"
    assert main(["run", "--config", str(project_dir / "gate.yaml"), "--model",
                 "mock/expert@0.8", "--rounds", "1", "--out", str(out)]) == 0
    trials = read_jsonl(out / "trials.jsonl", Trial)
    failed = [t for t in trials if not t.success]
    assert failed
    assert len(failed) < len(trials)
    capsys.readouterr()
    assert main(["show", "--run", str(out), "--failed"]) == 0
    text = capsys.readouterr().out
    assert text.count("=== ") == len(failed)
    assert all(f"=== {t.trial_id} " in text for t in failed)
    transcripts = read_transcripts(out)
    first = transcripts[str(failed[0].transcript_sha256)]
    assert first.instruction in text
    assert f"--- step 1: response {failed[0].response_ids[0]}" in text

    # model text that would drive a terminal or the CI log stays inert
    hostile = "done\n::set-output name=x::1\n\x1b[2J\x1b]8;;http://evil\x07click"
    path = out / TRANSCRIPTS
    records = read_compressed_jsonl(path, Transcript)
    records = [r.model_copy(update={"final_answer": hostile}) for r in records]
    with CompressedJsonlWriter(path.with_name("x.gz"), Transcript) as w:
        for r in records:
            w.write(r)
    os.replace(path.with_name("x.gz"), path)
    by_trial = {r.trial_id: line_sha256(r) for r in records}
    trials_path = out / "trials.jsonl"
    trials_path.write_text("".join(json.dumps(
        t.model_copy(update={"transcript_sha256": by_trial[t.trial_id]}).to_json()) + "\n"
        for t in trials))
    plain = io.StringIO()
    show(out, failed[0].trial_id, False, plain)
    shown = plain.getvalue()
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert not any(line.lstrip().startswith("::") for line in shown.splitlines())
    assert "http://evil" not in shown
    drawn = _Terminal()
    show(out, failed[0].trial_id, False, drawn)
    assert "╭" in drawn.getvalue()  # a rich panel on a terminal
    assert "set-output" in drawn.getvalue()
    assert "\x1b]8" not in drawn.getvalue()
    assert main(["show", "--run", str(out), "--trial", "no/such/r1"]) == 4
