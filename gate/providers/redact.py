"""Keeping API keys out of logs, messages and reprs.

``register_secret(key)`` remembers a key and attaches ``RedactingFilter`` to the loggers that
could ever see it (``gate`` and its provider modules, ``httpx``, ``httpcore``); ``redact(text)``
masks every registered key in a string. ``Secret`` wraps a key so that no repr or str shows it.
"""

from __future__ import annotations

import logging
import threading

MASK = "***"
_LOGGERS = (
    "gate",
    "gate.providers",
    "gate.providers.openai_compat",
    "gate.providers.factory",
    "gate.providers.mockserver",
    "httpx",
    "httpcore",
)
_secrets: set[str] = set()
_lock = threading.Lock()


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


def register_secret(value: str) -> Secret:
    """Remember ``value`` as a secret (min. 4 characters) and return it wrapped."""
    if len(value) >= 4:
        with _lock:
            _secrets.add(value)
        install_filter()
    return Secret(value)


def install_filter(*loggers: str) -> None:
    """Attach the redacting filter to the given loggers (the usual ones by default)."""
    for name in loggers or _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
