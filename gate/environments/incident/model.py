"""Strict models of the incident environment's fixture data (initial_state and expected)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from gate.environments.common import StateModel

ServiceName = Literal["web_server", "database", "cache", "message_queue", "load_balancer"]
SERVICES: tuple[ServiceName, ...] = (
    "web_server",
    "database",
    "cache",
    "message_queue",
    "load_balancer",
)
Status = Literal["healthy", "degraded", "down"]
ConfigValue = bool | int | float | str
Number = int | float


class LogEvent(StateModel):
    """A log message that appears ``count`` times in the service's recent log."""

    level: Literal["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
    message: str = Field(min_length=1, max_length=160)
    count: int = Field(1, ge=1, le=10)


class Service(StateModel):
    status: Status
    version: str = Field(min_length=1)
    config: dict[str, ConfigValue] = Field(min_length=1)
    metrics: dict[str, Number] = Field(min_length=1)
    baseline: dict[str, Number] | None = Field(
        None,
        description="normal metric values; shown beside the current ones, and reported "
        "as current once every fix is applied (defaults to metrics)",
    )
    alerts: list[str] = Field(default_factory=list)
    logs: list[LogEvent] = Field(min_length=1)

    @model_validator(mode="after")
    def _baseline_keys(self) -> Service:
        if self.baseline is not None and set(self.baseline) != set(self.metrics):
            raise ValueError("baseline must have exactly the keys of metrics")
        if sum(e.count for e in self.logs) > 20:
            raise ValueError("at most 20 log lines (sum of counts)")
        return self


class IncidentState(StateModel):
    started_at: datetime
    services: dict[ServiceName, Service]

    @model_validator(mode="after")
    def _all_services(self) -> IncidentState:
        missing = [s for s in SERVICES if s not in self.services]
        if missing:
            raise ValueError(f"missing services: {', '.join(missing)}")
        return self


class Fix(StateModel):
    """One remedy the incident needs. Every fix of ``expected.fixes`` must be applied.

    ``update_config``: set ``key`` to ``value`` (or to any number in ``[min, max]``, or to one of
    ``alternatives``). With ``restart_required`` the change only takes effect after a later
    ``restart_service`` of the same service. ``restart_service``: restart ``service``.
    """

    action: Literal["update_config", "restart_service"]
    service: ServiceName
    key: str | None = None
    value: ConfigValue | None = None
    min: Number | None = None
    max: Number | None = None
    alternatives: list[ConfigValue] = Field(default_factory=list)
    restart_required: bool = False

    @model_validator(mode="after")
    def _shape(self) -> Fix:
        if self.action == "update_config":
            if self.key is None or self.value is None:
                raise ValueError("an update_config fix needs key and value")
        elif (self.key, self.value, self.min, self.max) != (None, None, None, None) or (
            self.alternatives or self.restart_required
        ):
            raise ValueError("a restart_service fix takes only action and service")
        return self

    def accepts(self, value: ConfigValue) -> bool:
        """Whether setting ``key`` to ``value`` is this fix."""
        if value == self.value and type(value) is type(self.value):
            return True
        if value in self.alternatives:
            return True
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        lo, hi = self.min, self.max
        return (
            (lo is not None or hi is not None)
            and (lo is None or value >= lo)
            and (hi is None or value <= hi)
        )


class IncidentExpected(StateModel):
    root_cause_service: ServiceName
    fixes: list[Fix] = Field(min_length=1)
