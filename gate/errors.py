"""The gate's exception tree.

    GateError                      base of every error the gate raises on purpose
    ├── ConfigError                invalid input: carries ``problems`` (file, line, message); exit 4
    │   └── RecordError            a run record: corrupt, an unknown or missing field
    ├── ProviderError              a provider attempt failed: kind, status, provider, response id
    │   (see gate.providers.base)
    ├── HaltError                  the run must stop starting new work (circuit breaker, pause)
    │   ├── CircuitBreakerError    budget ceiling, HTTP 402, unknown price: ``[CIRCUIT BREAKER]``
    │   └── PausedError            the pause file exists
    ├── RegistryWriteError         the status writer refused a status (``adopted`` and friends)
    └── ResumeError                ``--resume`` refused: hashes changed or no checkpoint

Errors the *model* should see (a bad tool call) are not exceptions at all: they are
``ToolResult(error=...)`` values returned to the agent loop (gate.environments.base).
A failing verdict is a result, not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass


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


# --- exit codes: the one table -----------------------------------------------------------

EXIT_OK = 0  # success; a sweep: no regression and the SLOs met
EXIT_FAIL = 1  # a sweep found a regression or an SLO breach; a smoke check failed; mismatch
EXIT_HALTED = 2  # the circuit breaker or the pause file stopped the run
EXIT_INCONCLUSIVE = 3  # the sweep could not decide
EXIT_INVALID = 4  # invalid input: a file, a flag, a refused resume or registry write

# The exit code of each error type; the most specific class in an exception's MRO wins.
EXIT_CODES: dict[type[GateError], int] = {
    GateError: EXIT_INVALID,
    ConfigError: EXIT_INVALID,
    HaltError: EXIT_HALTED,
    CircuitBreakerError: EXIT_HALTED,
    PausedError: EXIT_HALTED,
    RegistryWriteError: EXIT_INVALID,
    ResumeError: EXIT_INVALID,
}


def exit_code_for(exc: GateError) -> int:
    """The exit code of ``exc`` from ``EXIT_CODES``."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_INVALID
