"""Privacy by default: planted e-mails, phone numbers, card numbers, keys, tokens, credential
fields and a team's own pattern reach no written file and no printed line; each value gets a
placeholder that is stable within a session, so the replay still finds its recorded answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from traffic_sessions import write_jsonl

from gate.cli import main
from gate.project.load import load_project
from gate.traffic.redact import Redactor

EMAIL = "jane.doe+vip@corp-mail.example.org"
PHONE = "+44 20 7946 0958"
PHONE_US = "(415) 555-0132"
CARD = "4111 1111 1111 1111"
CARD_INT = 4242424242424242
OPENAI_KEY = "sk-proj-AbCdEf0123456789XyZabc"
GITHUB_TOKEN = "ghp_1234567890abcdefghijABCDEFGHIJ123456"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk"
BEARER = "Bearer zq8Xv2LmN4pR7sT1uW3yB5"
PASSWORD = "hunter2-horse-battery"
ACCOUNT = "ACCT-778899"
PLANTED = [EMAIL, PHONE, PHONE_US, CARD, CARD.replace(" ", ""), str(CARD_INT), OPENAI_KEY,
           GITHUB_TOKEN, AWS_KEY, JWT, BEARER.split()[1], PASSWORD, ACCOUNT]


def _call(cid: str, name: str, args: dict[str, object]) -> dict[str, object]:
    return {"id": cid, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}


def leaky_session(i: int) -> dict[str, object]:
    messages = [
        {"role": "system", "content": f"Support bot. Escalations: {PHONE_US}. "
                                      f"Use {BEARER} for the CRM."},
        {"role": "user", "content": f"I am {EMAIL} ({PHONE}), account {ACCOUNT}. My card "
                                    f"{CARD} was charged twice, request {i}."},
        {"role": "assistant", "content": None,
         "tool_calls": [_call("a", "find_customer", {"email": EMAIL, "api_key": OPENAI_KEY})]},
        {"role": "tool", "tool_call_id": "a", "content": json.dumps(
            {"id": "c1", "email": EMAIL, "card": CARD_INT, "token": GITHUB_TOKEN,
             "note": f"aws {AWS_KEY} jwt {JWT}", "password": PASSWORD})},
        {"role": "assistant", "content": None,
         "tool_calls": [_call("b", "refund_charge", {"email": EMAIL, "amount": 5})]},
        {"role": "tool", "tool_call_id": "b", "content": json.dumps({"ok": True})},
        {"role": "assistant", "content": f"Refunded; receipt sent to {EMAIL}."},
    ]
    tools = [{"type": "function", "function": {
        "name": "find_customer", "description": f"Looks up customers (key {OPENAI_KEY})",
        "parameters": {"type": "object", "properties": {"email": {"type": "string"},
                                                        "api_key": {"type": "string"}},
                       "required": ["email"]}}}]
    return {"id": f"leak-{i}", "messages": messages, "tools": tools, "label": "good"}


def all_text(root: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(root.rglob("*"))
                     if p.is_file())


def test_no_planted_value_reaches_a_written_file_or_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "traffic.jsonl", [leaky_session(i) for i in range(3)],
                      extra_lines=(json.dumps(leaky_session(9))[:-40],))  # a truncated line
    out = tmp_path / "suite"
    assert main(["import-traces", "--from", str(src), "--env", "billing", "--out", str(out),
                 "--redact", r"ACCT-\d{6}"]) == 0
    printed = capsys.readouterr()
    written = all_text(out)
    for value in PLANTED:
        assert value not in written, value
        assert value not in printed.out + printed.err, value
    summary = json.loads((out / "traffic-summary.json").read_text())
    assert set(summary["redactions"]) == {"API_KEY", "BEARER", "CARD", "CREDENTIAL_FIELD",
                                          "EMAIL", "PATTERN", "PHONE"}
    assert "redacted:" in printed.out


def test_placeholders_are_stable_within_a_session_so_the_replay_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "traffic.jsonl", [leaky_session(1), leaky_session(2)])
    out = tmp_path / "suite"
    assert main(["import-traces", "--from", str(src), "--env", "billing", "--out",
                 str(out)]) == 0
    project = load_project(out / "gate.yaml")  # replays every reference trajectory
    lt = project.tasks[0]
    # numbered in order of appearance: the system prompt's phone number came first
    assert lt.task.instruction.startswith("I am <EMAIL_1> (<PHONE_2>)")
    assert lt.fixture.reference_trajectory[0].args == {"email": "<EMAIL_1>",
                                                       "api_key": "<CREDENTIAL_FIELD_1>"}
    assert lt.fixture.initial_state["recorded"][0]["result"]["email"] == "<EMAIL_1>"
    assert main(["validate", "--config", str(out / "gate.yaml")]) == 0


@pytest.mark.parametrize("text", [
    "order 10234567 shipped", "SKU 4111-22", "version 1.2.3.4", "id 2026-11-05",
])
def test_ordinary_values_are_left_alone(text: str) -> None:
    assert Redactor().text(text) == text


def test_a_card_number_must_pass_the_luhn_check() -> None:
    r = Redactor()
    r.text("4111111111111112 and 4111111111111111")
    assert r.counts["CARD"] == 1


def test_the_same_value_gets_the_same_placeholder_and_others_the_next() -> None:
    r = Redactor()
    assert r.text("a@x.io b@x.io a@x.io") == "<EMAIL_1> <EMAIL_2> <EMAIL_1>"
    assert r.counts["EMAIL"] == 3
