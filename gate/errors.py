"""Every exception class of the gate, and the one table that maps them to exit codes.

    Exception
    ├── GateError                      base of every error the gate raises on purpose
    │   ├── ConfigError                invalid input: ``problems`` (file, line, message)  exit 4
    │   │   ├── RecordError            a run record: corrupt, an unknown or missing field  exit 4
    │   │   └── GitRefError            a git ref or path that cannot be read at that ref  exit 4
    │   ├── ProviderError              a provider call failed after its retries: kind,    exit 2
    │   │                              status, provider, response id (a lost trial, in a run)
    │   ├── HaltError                  stop starting new work                              exit 2
    │   │   ├── CircuitBreakerError    budget ceiling, HTTP 402, balance unreadable: prints
    │   │   │                          ``[CIRCUIT BREAKER] <reason> at task T, round R``
    │   │   └── PausedError            the pause file exists
    │   ├── RegistryWriteError         the status writer refused a status (``adopted``...) exit 4
    │   ├── ResumeError                ``--resume`` refused: hashes changed, no checkpoint exit 4
    │   ├── GitHubContextError         the GitHub environment is incomplete (no token...) exit 4
    │   ├── CommentRaceError           the single PR comment could not be settled         exit 4
    │   └── UntrustedArtifactError     an artifact from another run is refused (layout,   exit 1
    │                                  size, links; a PR whose head is not the run's)
    ├── AttemptFailed                  internal: one provider attempt failed; retried, then
    │                                  turned into ProviderError (never leaves gate.providers)
    └── Blocked                        internal: the adoption guard fails closed with a reason

Errors the *model* should see (a bad tool call) are not exceptions at all: they are
``ToolResult(error=...)`` values returned to the agent loop (gate.environments.base).
A failing verdict is a result, not an exception.

``EXIT_CODES`` is the one table from error type to exit code; ``exit_code_for`` reads it
(the most specific class in the error's MRO wins). The command line (gate.cli) uses it and
nothing else defines exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# --- exit codes ----------------------------------------------------------------------------

EXIT_OK = 0  # success; a sweep: no regression and the SLOs met
EXIT_FAIL = 1  # a regression or an SLO breach; a smoke check failed; verify found a mismatch
EXIT_HALTED = 2  # the circuit breaker or the pause file stopped the run
EXIT_INCONCLUSIVE = 3  # the sweep could not decide
EXIT_INVALID = 4  # invalid input: a file, a flag, a refused resume or registry write


@dataclass(frozen=True, order=True)
class Problem:
    """One validation problem, printed as ``path:line: message``."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


class GateError(Exception):
    """Base class of every error the gate raises on purpose."""


class ConfigError(GateError):
    """Invalid input. Never a traceback: the CLI prints each problem and exits 4."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line or 0, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def one(cls, path: str, line: int | None, message: str) -> ConfigError:
        return cls([Problem(path, line, message)])


class RecordError(ConfigError):
    """A record of a run directory (trials.jsonl, manifest.json, ...) does not match its model."""


class GitRefError(ConfigError):
    """A ref that does not name a commit, a path outside the repository, or git itself failing."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__([Problem(where, None, message)])


class ErrorKind(StrEnum):
    """Why a provider attempt did not succeed."""

    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    ERROR_IN_BODY = "error_in_body"
    MALFORMED_RESPONSE = "malformed_response"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    AUTH = "auth"
    PAYMENT_REQUIRED = "payment_required"
    BAD_REQUEST = "bad_request"
    FINISH_ERROR = "finish_error"  # HTTP 200, but the choice ended with finish_reason "error"
    RESPONSE_TOO_LARGE = "response_too_large"  # the body passed max_response_bytes
    INTERRUPTED = "interrupted"  # sent, then gate died before the outcome (found on --resume)
    # ours or the network's, not the provider's: never retried as if the provider were flaky
    TLS_ERROR = "tls_error"  # the certificate did not verify, or the TLS handshake was refused
    DNS_ERROR = "dns_error"  # the provider's (or the proxy's) name did not resolve
    PROXY_REFUSED = "proxy_refused"  # the proxy answered 407 (or 403 to CONNECT)
    CONNECTION_REFUSED = "connection_refused"  # nothing listens: refused at connection setup


class ProviderError(GateError):
    """A call failed for a provider reason after all its retries. Never a model failure."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        response_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.kind = kind
        self.provider = provider
        self.status = status
        self.response_id = response_id
        self.retry_after_s = retry_after_s
        where = f"{provider}: " if provider else ""
        code = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{where}{kind.value}{code}: {message}")


class AttemptFailed(Exception):
    """One attempt failed for a provider reason (internal: becomes ProviderError at the end)."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        response_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.kind = kind
        self.message = message
        self.status = status
        self.response_id = response_id
        self.retry_after_s = retry_after_s
        super().__init__(f"{kind.value}: {message}")

    def label(self) -> str:
        """``rate_limited (429)``: the kind, and the status when there is one."""
        return self.kind.value if self.status is None else f"{self.kind.value} ({self.status})"


class HaltError(GateError):
    """The run must stop starting new trials; in-flight trials may finish."""

    reason: str

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class CircuitBreakerError(HaltError):
    """Budget ceiling reached, HTTP 402, or any other condition that must stop spending."""


class PausedError(HaltError):
    """The pause file exists."""


class RegistryWriteError(GateError):
    """The registry status writer refused the requested status."""


class ResumeError(GateError):
    """``--resume`` refused (configuration or file hashes changed, or nothing to resume)."""


class GitHubContextError(GateError):
    """The GitHub environment is incomplete (no token, no repository, no PR number)."""


class CommentRaceError(GateError):
    """The single PR comment could not be settled (concurrent writers) in a few rounds."""


class UntrustedArtifactError(GateError):
    """What another workflow run handed over is refused: an unexpected layout, a link, an
    oversized file, or a PR whose head is not the commit that run was for."""


class Blocked(Exception):
    """The adoption guard fails closed with this reason (internal to gate.github.guard)."""


# --- the one table ---------------------------------------------------------------------------

EXIT_CODES: dict[type[GateError], int] = {
    GateError: EXIT_INVALID,
    ConfigError: EXIT_INVALID,
    ProviderError: EXIT_HALTED,  # the provider stopped the run: not invalid input, no verdict
    HaltError: EXIT_HALTED,
    CircuitBreakerError: EXIT_HALTED,
    PausedError: EXIT_HALTED,
    RegistryWriteError: EXIT_INVALID,
    ResumeError: EXIT_INVALID,
    GitHubContextError: EXIT_INVALID,
    UntrustedArtifactError: EXIT_FAIL,  # refused: nothing is posted
}


def exit_code_for(exc: GateError) -> int:
    """The exit code of ``exc``: the entry of the most specific class in its MRO."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_INVALID
