"""Keeping API keys out of logs, messages and reprs.

``register_secret(key)`` remembers a key and makes sure no log record of the ``gate``,
``httpx`` or ``httpcore`` loggers, or of any of their children (created before or after), can
carry it: the record is redacted as it is created (a chained log-record factory), so whatever
handler receives it, the application's own included, sees ``***``. A filter on a logger would
not do: Python applies a logger's filters only to records logged on that very logger, not to
those propagated from its children. ``RedactingFilter`` is also a handler filter (the CLI puts
it on its handler). ``redact(text)`` masks every registered key in a string. ``Secret`` wraps a
key so that no repr or str shows it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

MASK = "***"
HIERARCHIES = ("gate", "httpx", "httpcore")  # loggers whose records (children's too) are redacted
_secrets: set[str] = set()
_lock = threading.Lock()
_factory_installed = False


class Secret:
    """A credential that never shows itself: ``repr`` and ``str`` give ``Secret('***')``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself, for the ``Authorization`` header and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    __str__ = __repr__


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in tuple(_secrets):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a log record so that no registered secret survives in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def in_scope(logger_name: str) -> bool:
    """True for ``gate``, ``httpx``, ``httpcore`` and every logger below them."""
    return any(logger_name == h or logger_name.startswith(h + ".") for h in HIERARCHIES)


def register_secret(value: str) -> Secret:
    """Remember ``value`` as a secret (min. 4 characters) and return it wrapped."""
    if len(value) >= 4:
        with _lock:
            _secrets.add(value)
        install_filter()
    return Secret(value)


def install_filter() -> None:
    """Redact every record of the ``gate``/``httpx``/``httpcore`` loggers and their children
    as it is created. Chains the log-record factory in place (installed once)."""
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if _secrets and in_scope(record.name):
                try:
                    _FILTER.filter(record)
                except Exception:  # a message that cannot be formatted: keep it, redacted
                    record.msg, record.args = redact(f"{record.msg} {record.args!r}"), None
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True
