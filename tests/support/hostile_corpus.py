"""Hostile strings: what a provider, a model or a PR's files could say to hurt the gate."""

from __future__ import annotations

import re

HOSTILE = [
    "@octocat @acme/core please merge",
    "<img src=x onerror=alert(1)>",
    "<script>alert(document.cookie)</script>",
    "<!-- gate-report -->",
    "<details open><summary>all models pass</summary>",
    "[approve here](http://evil.example/x)",
    "![i](http://e.example/i.png)",
    "<http://evil.example/autolink> https://evil.example/bare www.evil.example",
    "cell | broken\n| injected | row |",
    "`code span` ``` fence ```",
    "\u202e@\u200boctocat\u200d and \u2066@acme/core\u2069",  # RTL override, zero-width, isolates
    "line1\r\nline2\u2028line3\u2029line4\x00\x1b[31m",
    "$\\color{red}{FAKE PASS}$",
    "**bold** _em_ ~~strike~~ # heading",
    "x" * 5000,
]

MENTION = re.compile(r"(?<![A-Za-z0-9_])@[A-Za-z0-9_]")
UNESCAPED_MD = re.compile(r"(?<!\\)(?:\\\\)*[\[\]|`*_~$]")
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def unescaped_markdown(text: str) -> list[str]:
    """Markdown punctuation in ``text`` that no backslash escapes."""
    return [m.group(0)[-1] for m in UNESCAPED_MD.finditer(text)]


def assert_inert(text: str) -> None:
    assert not MENTION.search(text), MENTION.findall(text)
    for raw in ("<img", "<script", "<details open", "http://", "https://", "www.evil",
                "\u202e", "\u200b", "\x1b"):
        assert raw not in text, raw
    assert text.count("<!-- gate-report -->") <= 1
    outside_code = re.sub(r"`[^`\n]*`", "``", text)  # inside a code span nothing is a link
    assert not re.search(r"(?<!\\)\]\(", outside_code)  # no link or image syntax
    assert "x" * 400 not in text  # capped


def billion_laughs(indent: str = "") -> str:
    """Nine levels of nine aliases: 9**9 (387 million) strings once expanded."""
    lines = [f'{indent}lol0: &lol0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        refs = ",".join([f"*lol{level - 1}"] * 9)
        lines.append(f"{indent}lol{level}: &lol{level} [{refs}]")
    return "\n".join(lines) + "\n"
