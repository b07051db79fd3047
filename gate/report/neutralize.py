"""The one neutralising function for untrusted text (DESIGN rule 10).

Untrusted: anything a provider says (error messages), a model says (final answers, tool
arguments), or a pull request's files say (task ids and titles, model ids, notes, SLO names).
Before such text reaches markdown (report.md, the PR comment, the job summary), a commit-status
description or a log line, it goes through :func:`neutralize` with the context it lands in:

``markdown``
    Inline text in a paragraph, list item or table cell. One line (newlines and other control
    characters become spaces, so a table row or list item cannot be broken out of); ``& < >``
    HTML-escaped (no raw HTML, no ``<!-- gate-report -->`` marker spoof); markdown punctuation
    backslash-escaped (no link, image, emphasis, code span, math or cell separator); URLs defanged
    (``https[:]//``, ``www[.]``) so that GitHub's autolinking does not make them links.
``code``
    A whole code span (backticks included) for ids and hashes: backticks, ``|``, ``<`` and
    ``>`` inside are replaced by look-alikes (a code span cannot escape them, and the raw text
    must not hold a marker such as ``<!-- gate-report -->``); URLs defanged as above (a copied
    id should not be a live link either).
``plain``
    Text that is not rendered as markdown: commit-status descriptions, console lines. One line,
    no control characters, URLs defanged.
``document``
    A whole markdown document written by gate itself (report.md on its way into the comment):
    only what must never pass whatever its author: HTML comments (the hidden marker) are made
    visible text, and mentions broken.

In every context: invisible formatting characters (zero-width, bidirectional overrides) are
removed, ``@`` becomes the full-width U+FF20 (GitHub pings ``@login`` and ``@org/team``, never
U+FF20; in ``code`` and ``document`` only where a mention could start, so ``model@0.8``
stays), and the text is capped at ``limit`` characters (an ellipsis marks the cut).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from markupsafe import Markup

Context = Literal["markdown", "code", "plain", "document"]

DEFAULT_LIMITS: dict[str, int | None] = {
    "markdown": 300,
    "code": 200,
    "plain": 300,
    "document": None,
}
AT = "\uff20"  # FULLWIDTH COMMERCIAL AT: shown like @, never a mention
ELLIPSIS = "…"

_WWW = re.compile(r"(?i)www\.")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")
_WHITESPACE = re.compile(r"[ \t]+")
# Where GitHub would see a mention: "@" at the start or after a non-word character, then a
# login or org/team. "user@host" and "model@0.8" are left alone there.
_MENTION_AT = re.compile(r"(?<![A-Za-z0-9_])@(?=[A-Za-z0-9_])")


def _visible(text: str, *, keep_newlines: bool) -> str:
    """Drop formatting characters (Cf: zero-width, bidi controls); controls become spaces."""
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf":
            continue
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif category in ("Cc", "Zl", "Zp"):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", _visible(text, keep_newlines=False)).strip()


def _cap(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + ELLIPSIS


def _defang(text: str) -> str:
    return _WWW.sub("www[.]", text.replace("://", "[:]//"))


def _markdown(text: str, limit: int | None) -> str:
    text = _defang(_cap(_one_line(text), limit)).replace("@", AT)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Inline only: the text never starts a line, so block syntax (#, -, 1.) cannot take effect.
    return _MD_SPECIAL.sub(r"\\\1", text)


def _code(text: str, limit: int | None) -> str:
    body = _MENTION_AT.sub(AT, _defang(_cap(_one_line(text), limit)))
    for raw, shown in (("`", "\u02cb"), ("|", "\u00a6"), ("<", "\u2039"), (">", "\u203a")):
        body = body.replace(raw, shown)
    body = body or " "
    return f"`{body}`"


def _plain(text: str, limit: int | None) -> str:
    return _cap(_defang(_one_line(text)).replace("@", AT), limit)


def _document(text: str, limit: int | None) -> str:
    text = _cap(_visible(text, keep_newlines=True), limit)
    return _MENTION_AT.sub(AT, text.replace("<!--", "&lt;!--"))


_BY_CONTEXT = {"markdown": _markdown, "code": _code, "plain": _plain, "document": _document}


def neutralize(text: object, *, context: Context = "markdown", limit: int | None = -1) -> str:
    """``text`` made inert for ``context`` (see the module docstring). ``None`` gives ``""``.

    ``limit`` caps the length of the text before escaping (default per context; ``None``: no
    cap)."""
    if text is None:
        return ""
    cap = DEFAULT_LIMITS[context] if limit == -1 else limit
    return _BY_CONTEXT[context](str(text), cap)


def neutral(text: object, *, context: Context = "markdown", limit: int | None = -1) -> Markup:
    """:func:`neutralize` marked as safe for the report template (``Markup`` passes as is)."""
    return Markup(neutralize(text, context=context, limit=limit))
