"""The ``incident`` environment: production incident response over five simulated services.

The agent inspects logs, metrics and status, changes configuration or restarts services, and
closes the incident naming the root-cause service. Symptoms often show in one service while
the cause sits in another. Success requires every expected fix applied, the incident resolved
naming the right root-cause service, and *no* wrong fix: a restart or a configuration change
that is not one of the expected fixes is recorded as a wrong fix and fails the task (the same
rule at every difficulty, so a reckless agent cannot score by trying everything).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import ValidationError

from gate.config.schema import Fixture, ToolCall
from gate.environments.base import Environment, EnvOutcome, ToolResult
from gate.environments.common import (
    evidence_found,
    stable_int,
    unknown_tool_messages,
    validation_messages,
)
from gate.environments.incident.model import (
    SERVICES,
    ConfigValue,
    Fix,
    IncidentExpected,
    IncidentState,
    Service,
)
from gate.environments.incident.telemetry import action_line, log_lines, metrics_now

DEFAULT_LOG_LINES = 20
Handler = Callable[["IncidentEnvironment", dict[str, Any]], ToolResult]


@dataclass
class _Runtime:
    """What the agent's actions change."""

    config: dict[str, dict[str, ConfigValue]]
    applied: set[int] = field(default_factory=set)
    pending_restart: set[int] = field(default_factory=set)
    wrong_fixes: list[dict[str, Any]] = field(default_factory=list)
    extra_logs: dict[str, list[str]] = field(default_factory=dict)
    actions: int = 0
    resolution: dict[str, Any] | None = None


def coerce(raw: str, like: ConfigValue) -> ConfigValue | None:
    """Parse ``raw`` as a value of the type of ``like``; None when it does not parse."""
    text = raw.strip()
    try:
        if isinstance(like, bool):
            return {"true": True, "false": False}.get(text.lower())
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            return float(text)
    except ValueError:
        return None
    return text


def _check_fix(i: int, fix: Fix, state: IncidentState) -> list[str]:
    where = f"expected.fixes.{i}"
    if fix.action == "restart_service" or fix.key is None or fix.value is None:
        return []
    config = state.services[fix.service].config
    if fix.key not in config:
        return [f"{where}.key: {fix.service} has no config key {fix.key!r}"]
    current = config[fix.key]
    problems = []
    for value in (fix.value, *fix.alternatives):
        if type(value) is not type(current):
            problems.append(f"{where}: {value!r} is not of the type of {current!r}")
    if fix.accepts(current):
        problems.append(f"{where}: the initial value {current!r} already satisfies the fix")
    return problems


def _check_fixes(expected: IncidentExpected, state: IncidentState) -> list[str]:
    problems = []
    for i, fix in enumerate(expected.fixes):
        problems += _check_fix(i, fix, state)
    restarts = {f.service for f in expected.fixes if f.action == "restart_service"}
    for f in expected.fixes:
        if f.restart_required and f.service in restarts:
            problems.append(f"expected.fixes: {f.service} has restart_required and a restart fix")
    return problems


class IncidentEnvironment(Environment):
    name: ClassVar[str] = "incident"
    tool_names: ClassVar[frozenset[str]] = frozenset(
        {
            "inspect_logs",
            "inspect_metrics",
            "check_status",
            "update_config",
            "restart_service",
            "resolve_incident",
        }
    )

    def __init__(self, fixture: Fixture, seed: int) -> None:
        super().__init__(fixture, seed)
        self.state = IncidentState.model_validate(fixture.initial_state)
        self.expected = IncidentExpected.model_validate(fixture.expected)
        self.services: dict[str, Service] = {str(k): v for k, v in self.state.services.items()}
        self.rseed = stable_int(seed, fixture.initial_state, fixture.expected)
        self.calls: list[ToolCall] = []
        self.rt = _Runtime(config={n: dict(s.config) for n, s in self.state.services.items()})

    @classmethod
    def check_fixture(cls, fixture: Fixture) -> list[str]:
        problems = unknown_tool_messages(fixture, cls.tool_names)
        try:
            state = IncidentState.model_validate(fixture.initial_state)
        except ValidationError as exc:
            state = None
            problems += validation_messages("initial_state", exc)
        try:
            expected = IncidentExpected.model_validate(fixture.expected)
        except ValidationError as exc:
            return problems + validation_messages("expected", exc)
        return problems if state is None else problems + _check_fixes(expected, state)

    # --- tools -----------------------------------------------------------------------------

    def call(self, tool: str, args: dict[str, Any]) -> ToolResult:
        self.calls.append(ToolCall(tool=tool, args=dict(args)))
        handler = _HANDLERS.get(tool)
        if handler is None:
            return ToolResult(content=None, error=f"unknown tool {tool!r}")
        service = args.get("service", args.get("root_cause_service"))
        if service is not None and service not in SERVICES:
            return ToolResult(content=None, error=f"no service {service!r}")
        return handler(self, args)

    def _inspect_logs(self, args: dict[str, Any]) -> ToolResult:
        name = args["service"]
        lines = log_lines(self.rseed, name, self.services[name], self.state.started_at)
        lines += self.rt.extra_logs.get(name, [])
        count = int(args.get("lines", DEFAULT_LOG_LINES))
        return ToolResult(content={"service": name, "lines": lines[-max(count, 1) :]})

    def _inspect_metrics(self, args: dict[str, Any]) -> ToolResult:
        name = args["service"]
        svc = self.services[name]
        normal = svc.baseline if svc.baseline is not None else svc.metrics
        recovered = self._recovered()
        phase = "recovered" if recovered else "incident"
        now = metrics_now(self.rseed, name, normal if recovered else svc.metrics, phase)
        normal_sorted = dict(sorted(normal.items()))
        return ToolResult(content={"service": name, "now": now, "normal": normal_sorted})

    def _check_status(self, args: dict[str, Any]) -> ToolResult:
        name = args["service"]
        svc = self.services[name]
        status = self._status(name)
        return ToolResult(
            content={
                "service": name,
                "status": status,
                "version": svc.version,
                "alerts": [] if self._recovered() else list(svc.alerts),
                "config": dict(sorted(self.rt.config[name].items())),
            }
        )

    def _update_config(self, args: dict[str, Any]) -> ToolResult:
        name, key = args["service"], args["key"]
        config = self.rt.config[name]
        if self.rt.resolution is not None:
            return ToolResult(content=None, error="the incident is already resolved")
        if key not in config:
            return ToolResult(
                content=None,
                error=f"{name} has no config key {key!r}; known keys: {', '.join(sorted(config))}",
            )
        old = config[key]
        new = coerce(str(args["value"]), old)
        if new is None:
            return ToolResult(
                content=None,
                error=f"{args['value']!r} is not a valid {type(old).__name__} for {key}",
            )
        if new == old and type(new) is type(old):
            return ToolResult(content={"service": name, "key": key, "value": old, "changed": False})
        config[key] = new
        self._log(name, f"config change applied: {key}={new} (was {old})")
        content = {"service": name, "key": key, "old": old, "new": new, "changed": True}
        return self._judge_config(name, key, new, content)

    def _judge_config(
        self, name: str, key: str, new: ConfigValue, content: dict[str, Any]
    ) -> ToolResult:
        for i, fix in enumerate(self.expected.fixes):
            if fix.action == "update_config" and (fix.service, fix.key) == (name, key):
                self.rt.applied.discard(i)
                self.rt.pending_restart.discard(i)
                if fix.accepts(new):
                    if fix.restart_required:
                        self.rt.pending_restart.add(i)
                        content["note"] = f"saved; takes effect after a restart of {name}"
                        return ToolResult(content=content)
                    self._apply(i)
                    return ToolResult(content=content)
        return self._wrong(f"config change {name}.{key}={new} is not a fix", content)

    def _restart_service(self, args: dict[str, Any]) -> ToolResult:
        name = args["service"]
        if self.rt.resolution is not None:
            return ToolResult(content=None, error="the incident is already resolved")
        self._log(name, "service restarted; accepting connections")
        content: dict[str, Any] = {"service": name, "restarted": True}
        fixes = self.expected.fixes
        hits = [i for i in self.rt.pending_restart if fixes[i].service == name]
        hits += [
            i
            for i, f in enumerate(fixes)
            if f.action == "restart_service" and f.service == name and i not in self.rt.applied
        ]
        for i in hits:
            self.rt.pending_restart.discard(i)
            self._apply(i)
        if hits or any(fixes[i].service == name for i in self.rt.applied):
            return ToolResult(content=content)
        return self._wrong(f"restart of {name} does not address the fault", content)

    def _resolve_incident(self, args: dict[str, Any]) -> ToolResult:
        if self.rt.resolution is not None:
            return ToolResult(content=None, error="the incident is already resolved")
        self.rt.resolution = {
            "root_cause_service": args["root_cause_service"],
            "summary": str(args.get("summary", ""))[:500],
        }
        return ToolResult(
            content={"resolved": True, "root_cause_service": args["root_cause_service"]}
        )

    # --- state changes ---------------------------------------------------------------------

    def _log(self, name: str, message: str) -> None:
        line = action_line(self.state.started_at, self.rt.actions, message)
        self.rt.actions += 1
        self.rt.extra_logs.setdefault(name, []).append(line)

    def _apply(self, index: int) -> None:
        self.rt.applied.add(index)

    def _recovered(self) -> bool:
        return len(self.rt.applied) == len(self.expected.fixes)

    def _status(self, name: str) -> str:
        return "healthy" if self._recovered() else self.services[name].status

    def _wrong(self, reason: str, content: dict[str, Any]) -> ToolResult:
        self.rt.wrong_fixes.append({"call": len(self.calls) - 1, "reason": reason})
        return ToolResult(content=content, wrong_fix=True)

    # --- judgement -------------------------------------------------------------------------

    def outcome(self) -> EnvOutcome:
        found = evidence_found(self.fixture.required_evidence, self.calls)
        evidence = sum(found) / len(found)
        fixed = len(self.rt.applied) / len(self.expected.fixes)
        named = (self.rt.resolution or {}).get("root_cause_service")
        diagnosis = named == self.expected.root_cause_service
        resolved = self.rt.resolution is not None
        wrong = len(self.rt.wrong_fixes)
        success = fixed == 1.0 and diagnosis and wrong == 0
        raw = 0.25 * evidence + 0.35 * fixed + 0.25 * diagnosis
        raw += 0.15 * (resolved and fixed == 1.0 and diagnosis)
        reward = 1.0 if success else round(raw * (0.5 if wrong else 1.0), 4)
        detail = {
            "evidence_coverage": round(evidence, 4),
            "fixes_applied": len(self.rt.applied),
            "fixes_total": len(self.expected.fixes),
            "resolved": resolved,
            "named_root_cause": named,
            "root_cause_correct": diagnosis,
            "wrong_fixes": wrong,
            "wrong_fix_reasons": [w["reason"] for w in self.rt.wrong_fixes][:5],
        }
        return EnvOutcome(success=success, reward=reward, detail=detail)

    def snapshot(self) -> dict[str, Any]:
        return {
            "services": {
                n: {"status": self._status(n), "config": dict(sorted(self.rt.config[n].items()))}
                for n in SERVICES
            },
            "applied_fixes": sorted(self.rt.applied),
            "pending_restart": sorted(self.rt.pending_restart),
            "wrong_fixes": list(self.rt.wrong_fixes),
            "resolution": self.rt.resolution,
            "calls": len(self.calls),
        }


_HANDLERS: dict[str, Handler] = {
    "inspect_logs": IncidentEnvironment._inspect_logs,
    "inspect_metrics": IncidentEnvironment._inspect_metrics,
    "check_status": IncidentEnvironment._check_status,
    "update_config": IncidentEnvironment._update_config,
    "restart_service": IncidentEnvironment._restart_service,
    "resolve_incident": IncidentEnvironment._resolve_incident,
}
