"""Malformed input is reported with file:line and skipped, never a traceback; when nothing can
be imported, or writing fails half-way, nothing is left behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from traffic_sessions import session, write_jsonl

from gate.cli import main
from gate.errors import ConfigError
from gate.traffic import write as writer
from gate.traffic.build import ImportOptions, build_suite
from gate.traffic.session import Session


def _renamed(s: dict[str, Any], name: str) -> dict[str, Any]:
    for m in s["messages"]:
        for tc in m.get("tool_calls") or []:
            tc["function"]["name"] = name
    return s


def run(src: Path, out: Path, *flags: str) -> int:
    return main(["import-traces", "--from", str(src), "--env", "support", "--out", str(out),
                 *flags])


def test_bad_jsonl_lines_are_reported_by_line_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [session(0), session(1)]
    no_result = session(2)
    no_result["messages"] = [m for m in no_result["messages"] if m.get("tool_call_id") != "c2"]
    bad_lines = (
        json.dumps(session(3))[:-25],  # line 3: truncated
        json.dumps({**session(4), "surprise": True}),  # line 4: unknown key
        "[1, 2, 3]",  # line 5: not an object
        json.dumps(no_result),  # line 6: a call without its result
        json.dumps({"messages": [{"role": "user", "content": "hello"}]}),  # line 7: no calls
        json.dumps(_renamed(session(5), "../../escape")),  # line 8: a name that is a path
    )
    src = write_jsonl(tmp_path / "in.jsonl", good, extra_lines=bad_lines)
    assert run(src, tmp_path / "out") == 0
    err = capsys.readouterr().err
    for line in (3, 4, 5, 6, 7, 8):
        assert f"{src}:{line}: " in err
    assert "surprise" in err
    assert "Traceback" not in err
    summary = json.loads((tmp_path / "out" / "traffic-summary.json").read_text())
    assert (summary["tasks"], summary["problems"]) == (2, 6)
    assert not list(tmp_path.rglob("escape*"))


def test_nothing_importable_is_exit_4_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"messages": [\n\nnot json at all\n')
    assert run(src, tmp_path / "out") == 4
    err = capsys.readouterr().err
    assert f"{src}:1: " in err
    assert f"{src}:3: " in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_a_failure_while_writing_leaves_no_partial_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [session(i) for i in range(4)])
    real = writer.dump
    written: list[str] = []

    def failing(relpath: str, content: Any) -> str:
        written.append(relpath)
        if len(written) == 5:
            raise OSError("disk full")
        return real(relpath, content)

    monkeypatch.setattr(writer, "dump", failing)
    with pytest.raises(OSError, match="disk full"):
        run(src, tmp_path / "out")
    assert len(written) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_an_existing_directory_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [session(0)])
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert run(src, out) == 4
    assert "never overwrites" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


@pytest.mark.parametrize(("flags", "word"), [
    (["--limit", "0"], "--limit"), (["--since", "yesterday"], "--since"),
    (["--until", "2026-11-01"], "--until"), (["--env", "Bad Name"], "--env"),
])
def test_bad_flags_are_exit_4_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], word: str
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [session(0)])
    argv = ["import-traces", "--from", str(src), "--env", "support", "--out",
            str(tmp_path / "out"), *flags]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 4
    assert word in capsys.readouterr().err


def test_a_bad_match_rule_or_pattern_is_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [session(0)])
    assert run(src, tmp_path / "a", "--match", "refund_order.amount=fuzzy") == 4
    assert run(src, tmp_path / "b", "--redact", "(unclosed") == 4
    err = capsys.readouterr().err
    assert "--match" in err
    assert "--redact" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_the_writer_refuses_a_path_outside_the_output(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="outside the output directory"):
        writer.write_suite(tmp_path / "out", {"a.yaml": {}, "tools/x/../../../evil.yaml": {}})
    assert sorted(p.name for p in tmp_path.iterdir()) == []


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["role", "content", "tool_calls", "function", "name", "arguments",
                         "id", "tool_call_id", "type", "parts", "x"]), inner, max_size=4),
    max_leaves=12)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool", "system", 3])},
    optional={"content": _json, "tool_calls": _json, "tool_call_id": _json})


@given(messages=st.lists(_message | st.dictionaries(st.text(max_size=3), _json, max_size=3),
                         min_size=1, max_size=6),
       tools=st.none() | st.lists(st.dictionaries(st.sampled_from(
           ["function", "name", "parameters", "type"]), _json, max_size=3), max_size=2))
@pytest.mark.slow
def test_any_shape_of_session_is_imported_or_reported_never_raised(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> None:
    sessions = [Session("s", ("f.jsonl", 1), messages, tools, "good")]
    suite = build_suite(sessions, ImportOptions(env="fuzz"))
    assert suite.summary["tasks"] + len(suite.problems) == 1


_args = st.dictionaries(st.sampled_from(["id", "n", "tags", "opts", "note"]), _json, max_size=4)


@settings(max_examples=25)
@given(calls=st.lists(st.tuples(st.sampled_from(["get_a", "get_b", "update_a"]), _args, _json),
                      min_size=1, max_size=4))
@pytest.mark.slow  # end to end: not in the fast loop
def test_whatever_the_arguments_and_results_an_imported_suite_validates(
    tmp_path_factory: pytest.TempPathFactory, calls: list[tuple[str, Any, Any]]
) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "do it"}]
    for i, (name, args, result) in enumerate(calls):
        messages.append({"role": "assistant", "tool_calls": [{"id": f"c{i}", "function": {
            "name": name, "arguments": json.dumps(args)}}]})
        messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps(result)})
    src = write_jsonl(tmp_path_factory.mktemp("in") / "s.jsonl",
                      [{"messages": messages, "label": "good"}])
    out = tmp_path_factory.mktemp("out") / "suite"
    code = run(src, out)  # 4: skipped, e.g. an argument seen with two JSON types
    assert code in (0, 4)
    assert code == 4 or main(["validate", "--config", str(out / "gate.yaml")]) == 0


def test_a_session_too_long_for_a_task_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = session(1)
    reads = long["messages"][2:4]  # get_order and its result
    long["messages"] = long["messages"][:2] + reads * 98 + long["messages"][-1:]
    src = write_jsonl(tmp_path / "in.jsonl", [session(0), long])
    assert run(src, tmp_path / "out") == 0
    assert f"{src}:2: session s-1: 98 calls" in capsys.readouterr().err
