"""The pure pieces: classification table, Retry-After parsing, backoff, cost divergence."""

from __future__ import annotations

import email.utils
import socket
import ssl
from typing import Any

import aiohttp
import httpx
import pytest

from gate.config.schema import RetryPolicy
from gate.errors import AttemptFailed
from gate.providers.base import RETRYABLE, ErrorKind
from gate.providers.capped import ResponseTooLarge
from gate.providers.classify import UNPARSEABLE, classify, classify_responses, parse_retry_after
from gate.providers.guards import cost_diverges
from gate.providers.retry import backoff_s, is_retryable

OK: dict[str, Any] = {
    "id": "gen-1",
    "choices": [{"message": {"role": "assistant", "content": "x"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost": 0.1},
}
REQ = httpx.Request("POST", "http://x/v1/chat/completions")


def _caused(outer: BaseException, cause: BaseException) -> BaseException:
    """``outer`` raised ``from cause``, as the transport raises httpx errors from aiohttp's."""
    outer.__cause__ = cause
    return outer


_PROXY_407 = aiohttp.ClientHttpProxyError(None, (), status=407)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "body", "exc", "kind"),
    [
        (200, OK, None, None),
        (429, {"error": {"code": 429, "message": "slow down"}}, None, ErrorKind.RATE_LIMITED),
        (500, UNPARSEABLE, None, ErrorKind.SERVER_ERROR),
        (502, {"error": {"code": 502}}, None, ErrorKind.SERVER_ERROR),
        (503, {}, None, ErrorKind.SERVER_ERROR),
        (504, {}, None, ErrorKind.SERVER_ERROR),
        (408, {}, None, ErrorKind.TIMEOUT),
        (401, {}, None, ErrorKind.AUTH),
        (403, {}, None, ErrorKind.AUTH),
        (402, {"error": {"code": 402}}, None, ErrorKind.PAYMENT_REQUIRED),
        (400, {}, None, ErrorKind.BAD_REQUEST),
        (404, {}, None, ErrorKind.BAD_REQUEST),
        (422, {}, None, ErrorKind.BAD_REQUEST),
        (200, {"error": {"code": 502, "message": "upstream"}}, None, ErrorKind.ERROR_IN_BODY),
        (200, {"error": {"code": 402, "message": "no credit"}}, None, ErrorKind.PAYMENT_REQUIRED),
        (200, UNPARSEABLE, None, ErrorKind.MALFORMED_RESPONSE),
        (200, {**OK, "choices": [{"message": {"role": "assistant", "content": "par"},
                                  "finish_reason": "error"}]}, None, ErrorKind.FINISH_ERROR),
        (200, {**OK, "choices": [{"message": {"role": "assistant", "content": "cut"},
                                  "finish_reason": "length"}]}, None, None),
        (200, [1, 2], None, ErrorKind.MALFORMED_RESPONSE),
        (200, {"id": "x", "choices": []}, None, ErrorKind.MALFORMED_RESPONSE),
        (200, {**OK, "choices": [{"message": None}]}, None, ErrorKind.MALFORMED_RESPONSE),
        (200, {**OK, "usage": None}, None, ErrorKind.MALFORMED_RESPONSE),
        (200, {**OK, "usage": {"prompt_tokens": "1", "completion_tokens": 1}}, None,
         ErrorKind.MALFORMED_RESPONSE),
        (None, None, httpx.ReadTimeout("t", request=REQ), ErrorKind.TIMEOUT),
        (None, None, httpx.ConnectTimeout("t", request=REQ), ErrorKind.TIMEOUT),
        (None, None, httpx.ConnectError("refused", request=REQ), ErrorKind.CONNECTION_ERROR),
        (None, None, httpx.RemoteProtocolError("eof", request=REQ), ErrorKind.CONNECTION_ERROR),
        (200, None, ResponseTooLarge(1024, 1025, 200), ErrorKind.RESPONSE_TOO_LARGE),
        (407, {}, None, ErrorKind.PROXY_REFUSED),
        (None, None, _caused(httpx.ConnectError("x", request=REQ), ssl.SSLCertVerificationError(
            1, "certificate verify failed")), ErrorKind.TLS_ERROR),
        (None, None, _caused(httpx.ConnectError("x", request=REQ), socket.gaierror(
            -2, "Name or service not known")), ErrorKind.DNS_ERROR),
        (None, None, _caused(httpx.ConnectError("x", request=REQ), ConnectionRefusedError(
            111, "Connection refused")), ErrorKind.CONNECTION_REFUSED),
        (None, None, _caused(httpx.ProxyError("x", request=REQ), _PROXY_407),
         ErrorKind.PROXY_REFUSED),
        # httpx-aiohttp maps a dropped connection to ConnectTimeout: aiohttp's cause decides
        (None, None, _caused(httpx.ConnectTimeout("x", request=REQ),
                             aiohttp.ServerDisconnectedError()), ErrorKind.CONNECTION_ERROR),
        (None, None, _caused(httpx.ReadTimeout("x", request=REQ),
                             aiohttp.SocketTimeoutError()), ErrorKind.TIMEOUT),
        (None, None, ValueError("a bug"), None),
    ],
)
def test_classify_table(status: int | None, body: Any, exc: BaseException | None,
                        kind: ErrorKind | None) -> None:
    assert classify(status, body, exc) == kind


def test_table_covers_every_kind() -> None:
    """Every ErrorKind is produced by some row of the table above (guards new kinds)."""
    produced = {ErrorKind.RATE_LIMITED, ErrorKind.SERVER_ERROR, ErrorKind.TIMEOUT, ErrorKind.AUTH,
                ErrorKind.PAYMENT_REQUIRED, ErrorKind.BAD_REQUEST, ErrorKind.ERROR_IN_BODY,
                ErrorKind.MALFORMED_RESPONSE, ErrorKind.CONNECTION_ERROR, ErrorKind.FINISH_ERROR,
                ErrorKind.RESPONSE_TOO_LARGE, ErrorKind.TLS_ERROR, ErrorKind.DNS_ERROR,
                ErrorKind.PROXY_REFUSED, ErrorKind.CONNECTION_REFUSED}
    # interrupted is no HTTP outcome: gate.rundir.audit gives it to an attempt with no outcome
    assert produced | {ErrorKind.INTERRUPTED} == set(ErrorKind)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_retry_predicate(kind: ErrorKind) -> None:
    # response_too_large: a body past the cap is no accident (max_tokens bounds a genuine one);
    # sending again would pay again for the same oversized answer
    # tls, dns, proxy, refused: ours or the network's; a retry would fail the same way
    expected = kind not in {ErrorKind.AUTH, ErrorKind.PAYMENT_REQUIRED, ErrorKind.BAD_REQUEST,
                            ErrorKind.RESPONSE_TOO_LARGE, ErrorKind.INTERRUPTED,
                            ErrorKind.TLS_ERROR, ErrorKind.DNS_ERROR, ErrorKind.PROXY_REFUSED,
                            ErrorKind.CONNECTION_REFUSED}
    assert is_retryable(AttemptFailed(kind, "x")) is expected
    assert (kind in RETRYABLE) is expected
    assert not is_retryable(ValueError("not an attempt failure"))


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 2.5 ", now) == 2.5
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("nan", now) is None
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now) == 0.0


def test_backoff_honours_retry_after_and_cap() -> None:
    policy = RetryPolicy(initial_wait_s=1.0, max_wait_s=60.0, jitter_s=1.0)
    assert [backoff_s(n, None, policy, 0.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_s(1, 7.0, policy, 0.0) == 7.0  # Retry-After wins over the exponential
    assert backoff_s(5, 3.0, policy, 0.5) == 3.5  # ... even when the exponential is longer
    assert backoff_s(1, 500.0, policy, 0.9) == 60.0  # capped
    assert backoff_s(10, None, policy, 0.9) == 60.0  # capped


def test_cost_divergence() -> None:
    assert not cost_diverges(None, 1.0)
    assert not cost_diverges(1.04, 1.0)
    assert cost_diverges(1.06, 1.0)
    assert cost_diverges(3.0, 1.0)  # the 3x price-table error
    assert not cost_diverges(0.0, 0.0)
    assert cost_diverges(0.01, 0.0)


RESPONSE_OK: dict[str, Any] = {
    "id": "resp_1", "object": "response", "status": "completed", "error": None,
    "output": [], "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
}


@pytest.mark.parametrize(("status", "body", "kind"), [
    (200, RESPONSE_OK, None),
    (200, {**RESPONSE_OK, "status": "incomplete"}, None),  # cut at max_output_tokens: usable
    (200, {**RESPONSE_OK, "status": "failed"}, ErrorKind.FINISH_ERROR),
    (200, {**RESPONSE_OK, "error": {"code": "server_error", "message": "x"}},
     ErrorKind.ERROR_IN_BODY),
    (200, {**RESPONSE_OK, "error": {"code": 402}}, ErrorKind.PAYMENT_REQUIRED),
    (200, {**RESPONSE_OK, "output": None}, ErrorKind.MALFORMED_RESPONSE),
    (200, {**RESPONSE_OK, "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
     ErrorKind.MALFORMED_RESPONSE),  # chat-completions usage is not a Responses answer
    (200, OK, ErrorKind.MALFORMED_RESPONSE),
    (200, UNPARSEABLE, ErrorKind.MALFORMED_RESPONSE),
    (429, {}, ErrorKind.RATE_LIMITED),
    (400, {"error": {"code": "unsupported_parameter"}}, ErrorKind.BAD_REQUEST),
])
def test_responses_classification(status: int, body: Any, kind: ErrorKind | None) -> None:
    assert classify_responses(status, body) is kind
    assert classify(200, RESPONSE_OK) is ErrorKind.MALFORMED_RESPONSE  # each wire its own table
