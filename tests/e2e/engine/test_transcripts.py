"""transcripts.jsonl.gz: every trial has its transcript, the provider key never reaches it,
``gate verify`` catches a changed one, and ``gate show`` prints it for a person without letting
model text drive the terminal or the CI log (the files themselves, their order on disk and the
cap: tests/unit/engine/test_transcript_files.py)."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import pytest

from gate.cli import main
from gate.config.schema import FaultConfig
from gate.engine.transcripts import TRANSCRIPTS, read_transcripts
from gate.records import Transcript, Trial
from gate.rundir.jsonl import (
    CompressedJsonlWriter,
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
