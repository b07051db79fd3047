"""Pure classification of one HTTP attempt into an ``ErrorKind`` (or ``None`` for success).

The table, in the order it is applied:

    exception        capped.ResponseTooLarge -> response_too_large (body over the cap)
                     caused by a certificate that did not verify, a refused TLS handshake
                       -> tls_error; a name that did not resolve -> dns_error; the proxy's
                       407 (403 to CONNECT) -> proxy_refused; nothing listening (ECONNREFUSED)
                       -> connection_refused  (transport.network_kind; never retried)
                     a timeout (a read, the connection, the attempt's deadline) -> timeout
                     any other httpx.TransportError -> connection_error
                     anything else -> not classified (``None``; the caller re-raises: a bug)
    status           402 -> payment_required      401, 403 -> auth
                     407 -> proxy_refused (only a proxy answers 407)
                     429 -> rate_limited          408 -> timeout (OpenRouter: upstream timed out)
                     5xx -> server_error          any other non-2xx -> bad_request
    2xx body         not JSON / not an object -> malformed_response
                     ``error`` object -> error_in_body (code 402 inside -> payment_required)
                     no ``choices[0].message`` object or no ``usage`` -> malformed_response
                     ``choices[0].finish_reason == "error"`` -> finish_error (the provider
                     failed mid-generation; what was produced is not the model's answer)
                     otherwise -> ``None`` (success)
    2xx Responses    (``classify_responses``, a ``POST /responses`` answer) not an object ->
                     malformed_response; ``error`` object -> error_in_body (code 402 ->
                     payment_required); no ``output`` list or no ``usage`` with
                     ``input_tokens`` and ``output_tokens`` -> malformed_response;
                     ``status: "failed"`` -> finish_error; otherwise ``None``

Nothing here does I/O; ``parse_retry_after`` is pure too (``now`` is passed in).
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable
from typing import Any, Final

import httpx

from gate.providers.base import ErrorKind
from gate.providers.capped import ResponseTooLarge
from gate.providers.transport import is_timeout, network_kind


class _Unparseable:
    """Sentinel for a body that was not valid JSON."""

    _instance: _Unparseable | None = None

    def __new__(cls) -> _Unparseable:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNPARSEABLE"


UNPARSEABLE: Final = _Unparseable()

_STATUS: Final[dict[int, ErrorKind]] = {
    401: ErrorKind.AUTH,
    402: ErrorKind.PAYMENT_REQUIRED,
    403: ErrorKind.AUTH,
    407: ErrorKind.PROXY_REFUSED,
    408: ErrorKind.TIMEOUT,
    429: ErrorKind.RATE_LIMITED,
}


def classify(
    status: int | None, body: Any = None, exc: BaseException | None = None
) -> ErrorKind | None:
    """Classify one attempt: the HTTP status, the parsed body (or ``UNPARSEABLE``), the exception.

    Returns ``None`` when the attempt succeeded (a usable completion), and also for an exception
    that is not a transport problem: that is a bug, and the caller must re-raise it.
    """
    return _classify(status, body, exc, _classify_body)


def classify_responses(
    status: int | None, body: Any = None, exc: BaseException | None = None
) -> ErrorKind | None:
    """``classify`` for an answer of the Responses API (``POST /responses``)."""
    return _classify(status, body, exc, _classify_responses_body)


def _classify(status: int | None, body: Any, exc: BaseException | None,
              classify_body: Callable[[Any], ErrorKind | None]) -> ErrorKind | None:
    if exc is not None:
        return _classify_exception(exc)
    if status is None:
        return ErrorKind.CONNECTION_ERROR
    if status in _STATUS:
        return _STATUS[status]
    if status >= 500:
        return ErrorKind.SERVER_ERROR
    if not 200 <= status < 300:
        return ErrorKind.BAD_REQUEST
    return classify_body(body)


def _classify_exception(exc: BaseException) -> ErrorKind | None:
    if isinstance(exc, ResponseTooLarge):
        return ErrorKind.RESPONSE_TOO_LARGE
    if not isinstance(exc, httpx.TransportError):
        return None
    kind = network_kind(exc)
    if kind is not None:
        return kind
    return ErrorKind.TIMEOUT if is_timeout(exc) else ErrorKind.CONNECTION_ERROR


def _classify_body(body: Any) -> ErrorKind | None:
    if body is UNPARSEABLE or not isinstance(body, dict):
        return ErrorKind.MALFORMED_RESPONSE
    error = body.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        return ErrorKind.PAYMENT_REQUIRED if code == 402 else ErrorKind.ERROR_IN_BODY
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ErrorKind.MALFORMED_RESPONSE
    if not isinstance(choices[0].get("message"), dict):
        return ErrorKind.MALFORMED_RESPONSE
    if not _usage_ok(body.get("usage")):
        return ErrorKind.MALFORMED_RESPONSE
    if choices[0].get("finish_reason") == "error":
        return ErrorKind.FINISH_ERROR
    return None


def _classify_responses_body(body: Any) -> ErrorKind | None:
    if body is UNPARSEABLE or not isinstance(body, dict):
        return ErrorKind.MALFORMED_RESPONSE
    error = body.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        return ErrorKind.PAYMENT_REQUIRED if code == 402 else ErrorKind.ERROR_IN_BODY
    if not isinstance(body.get("output"), list) or \
            not _usage_ok(body.get("usage"), ("input_tokens", "output_tokens")):
        return ErrorKind.MALFORMED_RESPONSE
    if body.get("status") == "failed":
        return ErrorKind.FINISH_ERROR
    return None


def _usage_ok(usage: Any, keys: tuple[str, str] = ("prompt_tokens", "completion_tokens")
              ) -> bool:
    if not isinstance(usage, dict):
        return False
    for key in keys:
        value = usage.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return False
    cost = usage.get("cost")
    return cost is None or (isinstance(cost, int | float) and math.isfinite(cost))


def error_message(body: Any, limit: int = 200) -> str:
    """The provider's own message from an error body, shortened (``""`` when there is none)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            if isinstance(message, str):
                return message[:limit]
        elif isinstance(error, str):
            return error[:limit]
    return ""


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    ``now`` is the current Unix time. Returns ``None`` for a missing or unreadable header and
    never a negative number.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        return _retry_after_date(value, now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _retry_after_date(value: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
