"""gate: a CI gate for LLM agents."""

from __future__ import annotations

from gate.errors import (
    CircuitBreakerError,
    ConfigError,
    GateError,
    HaltError,
    PausedError,
    Problem,
    RegistryWriteError,
    ResumeError,
)

__version__ = "0.1.0"

__all__ = [
    "CircuitBreakerError",
    "ConfigError",
    "GateError",
    "HaltError",
    "PausedError",
    "Problem",
    "RegistryWriteError",
    "ResumeError",
    "__version__",
]
