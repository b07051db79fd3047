"""Privacy by default: personal data and secrets in imported traffic replaced by placeholders.

Built-in detectors (in this order): bearer tokens, API keys (well-known prefixes, JWTs, and any
value under a key named like a credential), card numbers (13-19 digits passing the Luhn check),
e-mail addresses, phone numbers (a leading ``+`` or separators between digit groups); then the
user's own ``--redact`` patterns. Each distinct value becomes a placeholder such as
``<EMAIL_1>``, stable within one session (so a replayed lookup of ``<EMAIL_1>`` finds the
recorded answer) and counted by kind. The values themselves are never kept, printed or written.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_CARD_CANDIDATE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_SECRET_KEY = re.compile(r"(?i)(api[_-]?key|secret|password|passwd|token|authorization|"
                         r"credential|private[_-]?key)")

DETECTORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("BEARER", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*")),
    ("API_KEY", re.compile(
        r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}|sk_(?:live|test)_[A-Za-z0-9]{16,}"
        r"|rk_(?:live|test)_[A-Za-z0-9]{16,}|gh[pousr]_[A-Za-z0-9]{20,}"
        r"|github_pat_[A-Za-z0-9_]{20,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{35}"
        r"|xox[abprs]-[A-Za-z0-9\-]{10,}|glpat-[A-Za-z0-9_\-]{20,}"
        r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})")),
    ("EMAIL", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")),
    ("PHONE", re.compile(
        r"(?<![\w+])(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{2,4}\)[\s.\-]?|\d{2,4}[\s.\-])"
        r"\d{2,4}[\s.\-]?\d{3,4}(?![\w])")),
)
KINDS = ("BEARER", "API_KEY", "CARD", "EMAIL", "PHONE", "PATTERN", "CREDENTIAL_FIELD")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_phone(text: str) -> bool:
    return 8 <= sum(ch.isdigit() for ch in text) <= 15


@dataclass
class Redactor:
    """Replaces detected values in one session's texts. ``counts``: values replaced per kind
    (occurrences); ``placeholders``: how many distinct values got one."""

    patterns: Sequence[re.Pattern[str]] = ()
    counts: Counter[str] = field(default_factory=Counter)
    _seen: dict[tuple[str, str], str] = field(default_factory=dict)
    _next: Counter[str] = field(default_factory=Counter)

    def placeholder(self, kind: str, value: str) -> str:
        self.counts[kind] += 1
        key = (kind, value)
        if key not in self._seen:
            self._next[kind] += 1
            self._seen[key] = f"<{kind}_{self._next[kind]}>"
        return self._seen[key]

    def text(self, value: str) -> str:
        for pattern in self.patterns:  # the team's own first: they know their data best
            value = pattern.sub(lambda m: self.placeholder("PATTERN", m.group(0)), value)
        for kind, pattern in DETECTORS[:2]:
            value = pattern.sub(self._sub(kind), value)
        value = _CARD_CANDIDATE.sub(self._card, value)
        for kind, pattern in DETECTORS[2:]:
            value = pattern.sub(self._sub(kind), value)
        return value

    def _sub(self, kind: str) -> Callable[[re.Match[str]], str]:
        def replace(m: re.Match[str]) -> str:
            if kind == "PHONE" and not _is_phone(m.group(0)):
                return m.group(0)
            return self.placeholder(kind, m.group(0))
        return replace

    def _card(self, m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            return self.placeholder("CARD", digits)
        return m.group(0)

    def value(self, value: Any, key: str = "") -> Any:
        """Every string inside ``value`` redacted (mapping keys kept); a string under a key
        named like a credential (``api_key``, ``password``, ``token``...) replaced whole."""
        if isinstance(value, str):
            if key and _SECRET_KEY.search(key) and value:
                return self.placeholder("CREDENTIAL_FIELD", value)
            inner = _json_inside(value)
            if inner is not None:  # tool arguments and results are JSON in a string
                return json.dumps(self.value(inner))
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, key) for v in value]
        if isinstance(value, int) and not isinstance(value, bool):
            digits = str(abs(value))
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                return self.placeholder("CARD", digits)
        return value


def _json_inside(text: str) -> dict[str, Any] | list[Any] | None:
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def compile_patterns(raw: Sequence[str]) -> list[re.Pattern[str]]:
    """The user's ``--redact`` patterns; raises ``re.error`` for a bad one."""
    return [re.compile(p) for p in raw]
