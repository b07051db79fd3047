"""The one neutralising function: the hostile corpus and properties over any text."""

from __future__ import annotations

import pytest
from hostile_corpus import HOSTILE, INVISIBLE, MENTION, unescaped_markdown
from hypothesis import given
from hypothesis import strategies as st

from gate.report.neutralize import DEFAULT_LIMITS, neutralize

PIECES = st.one_of(
    st.characters(),
    st.sampled_from([*"@<>&|[]()!`*_~$\n\r\\:/.-#\u202e\u200b",
                     "://", "<!--", "www.", "http", "@a", "-->"]),
)
ANY_TEXT = st.lists(PIECES, max_size=200).map("".join)


def check_markdown(out: str) -> None:
    assert "@" not in out
    assert "<" not in out
    assert ">" not in out
    assert "\n" not in out
    assert "\r" not in out
    assert "://" not in out
    assert "www." not in out.lower()
    assert unescaped_markdown(out) == []
    assert not INVISIBLE.search(out)


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_context_makes_the_corpus_inert(text: str) -> None:
    out = neutralize(text)
    check_markdown(out)
    assert len(out) <= 8 * (DEFAULT_LIMITS["markdown"] or 0)


@pytest.mark.parametrize("text", HOSTILE)
def test_code_context_stays_one_code_span(text: str) -> None:
    out = neutralize(text, context="code")
    assert out.startswith("`")
    assert out.endswith("`")
    inner = out[1:-1]
    for bad in ("`", "|", "<", ">", "\n", "\r"):
        assert bad not in inner
    assert not MENTION.search(inner)
    assert not INVISIBLE.search(inner)


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_context_for_status_descriptions(text: str) -> None:
    out = neutralize(text, context="plain", limit=140)
    assert len(out) <= 140
    assert "@" not in out
    assert "\n" not in out
    assert "://" not in out
    assert not INVISIBLE.search(out)


def test_document_context_keeps_gate_markdown_but_not_markers_or_pings() -> None:
    doc = ("## gate\n\n| a | b |\n|---|---|\n| `mock/expert@0.8` | ok |\n"
           "<!-- gate-report -->\n@team\n")
    out = neutralize(doc, context="document")
    assert "| `mock/expert@0.8` | ok |" in out  # gate's own table and ids untouched
    assert "<!--" not in out
    assert not MENTION.search(out)


def test_examples() -> None:
    assert neutralize("[x](http://evil)") == "\\[x\\](http\\[:\\]//evil)"
    assert neutralize("@octocat") == "\uff20octocat"
    assert neutralize("a|b\nc") == "a\\|b c"
    assert neutralize("<!-- gate-report -->") == "&lt;!-- gate-report --&gt;"
    assert neutralize("x" * 400).endswith("…")
    assert neutralize(None) == ""
    assert neutralize("`a|b`", context="code") == "`\u02cba\u00a6b\u02cb`"


@given(ANY_TEXT)
def test_markdown_property(text: str) -> None:
    check_markdown(neutralize(text))


@given(ANY_TEXT)
def test_code_property(text: str) -> None:
    out = neutralize(text, context="code")
    inner = out[1:-1]
    assert out[0] == out[-1] == "`"
    assert not any(c in inner for c in "`|<>\n\r")
    assert not MENTION.search(inner)


@given(ANY_TEXT, st.integers(min_value=1, max_value=200))
def test_plain_property(text: str, limit: int) -> None:
    out = neutralize(text, context="plain", limit=limit)
    assert len(out) <= limit
    assert "@" not in out
    assert "\n" not in out
    assert "://" not in out


@given(ANY_TEXT)
def test_document_property(text: str) -> None:
    out = neutralize(text, context="document")
    assert "<!--" not in out
    assert not MENTION.search(out)
    assert not INVISIBLE.search(out)
