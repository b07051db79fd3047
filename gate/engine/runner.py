"""Runs trials: bounded concurrency, audit of every provider attempt, checkpoint of every
finished trial, heartbeat with cost, pause file, and the halt path of the circuit breaker.

The engine never decides verdicts; it turns cells (arm x task x round) into trial records.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from gate.agent.loop import TrialSpec, TrialTrace, run_trial
from gate.agent.program import ProgramTrace, agent_for, program_fields, run_program_trial
from gate.config.load import Project
from gate.engine.jsonl import JsonlWriter
from gate.engine.session import Notices
from gate.environments import ENVIRONMENTS
from gate.errors import CircuitBreakerError, HaltError, PausedError
from gate.providers.base import Attempt, Provider, ProviderError

log = logging.getLogger(__name__)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def trial_trace_id(run_id: str, trial_id: str) -> str:
    """The trial's OpenTelemetry trace id (32 hex digits), fixed by the run id and the trial
    id, so a resumed run and a later ``gate export-otel`` name the same trace."""
    return hashlib.sha256(f"gate-trace|{run_id}|{trial_id}".encode()).hexdigest()[:32]


def _manifest_run_id(out_dir: Path) -> str:
    path = out_dir / "manifest.json"
    if not path.exists():
        return ""
    run_id = json.loads(path.read_text(encoding="utf-8")).get("run_id")
    return run_id if isinstance(run_id, str) else ""


def trial_seed(run_seed: int, task_id: str, round_no: int) -> int:
    """Same for every arm of a round: the pairing of the paired design."""
    digest = hashlib.sha256(f"{run_seed}|{task_id}|{round_no}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Arm:
    """What is compared: a model with the prompt set and tool set it runs with."""

    name: str
    model: str
    provider: str
    project: Project  # prompts and tools as this arm sees them

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "provider": self.provider,
                "prompts_tools": self.project.prompt_tool_source}


@dataclass(frozen=True, order=True)
class Cell:
    round: int
    task: str
    arm: str

    @property
    def trial_id(self) -> str:
        return f"{self.arm}/{self.task}/r{self.round}"


@dataclass
class Halt:
    kind: str  # "circuit_breaker" | "paused"
    reason: str
    task: str
    round: int


@dataclass
class Counters:
    calls: int = 0
    failed_attempts: int = 0
    cost_usd: float = 0.0
    trials_done: int = 0
    current: dict[str, Any] = field(default_factory=dict)


class Engine:
    def __init__(
        self,
        out_dir: Path,
        arms: dict[str, Arm],
        providers: dict[str, Provider],
        *,
        seed: int,
        concurrency: int,
        max_tokens: int,
        temperature: float,
        heartbeat_interval_s: float,
        pause_file: Path | None = None,
        console: TextIO | None = None,
        notices: Notices | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.out_dir = out_dir
        self.arms = arms
        self.providers = providers
        self.seed = seed
        self.concurrency = concurrency
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.heartbeat_interval_s = heartbeat_interval_s
        self.pause_file = pause_file
        self.console = console or sys.stderr
        self.notices = notices or Notices(self.console)
        self.halt: Halt | None = None
        self.stop = asyncio.Event()  # set by the circuit breaker: agent programs are ended
        self.run_id = _manifest_run_id(out_dir)  # written before the engine starts
        self.counters = Counters()
        self.audit = JsonlWriter(out_dir / "audit.jsonl")
        self.trials = JsonlWriter(out_dir / "trials.jsonl")
        self.heartbeat = JsonlWriter(out_dir / "heartbeat.jsonl", fsync=False)
        self._progress: Callable[[int, int], None] | None = None
        self._sleep = sleep  # injectable: tests drive the heartbeat without waiting

    def close(self) -> None:
        for w in (self.audit, self.trials, self.heartbeat):
            w.close()

    # --- running ---------------------------------------------------------------------

    async def run_cells(self, cells: list[Cell], label: str = "trials") -> list[dict[str, Any]]:
        """Run cells with bounded concurrency, in order of start. Stops starting on a halt."""
        records: list[dict[str, Any]] = []
        queue = list(cells)
        total = len(queue)
        sem = asyncio.Semaphore(self.concurrency)
        progress = _Progress(self.console, label, total)
        beat = asyncio.create_task(self._heartbeat_loop())

        async def worker(cell: Cell) -> None:
            async with sem:
                if self.halt is not None or self._check_pause(cell):
                    return
                record = await self._run_cell(cell)
                if record is not None:
                    records.append(record)
                    progress.advance(self.counters)

        try:
            await asyncio.gather(*(worker(c) for c in queue))
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            self._beat()
            progress.close()
        return sorted(records, key=lambda r: (r["round"], r["task"], r["arm"]))

    def _check_pause(self, cell: Cell) -> bool:
        if self.pause_file is not None and self.pause_file.exists():
            self._set_halt(PausedError(f"pause file {self.pause_file} exists"), cell)
            return True
        return False

    def _set_halt(self, exc: HaltError, cell: Cell) -> None:
        if self.halt is not None:
            return
        kind = "paused" if isinstance(exc, PausedError) else "circuit_breaker"
        self.halt = Halt(kind, exc.reason, cell.task, cell.round)
        if kind == "circuit_breaker":
            self.stop.set()  # running agent programs are ended at once
            print(f"[CIRCUIT BREAKER] {exc.reason} at task {cell.task}, round {cell.round}",
                  file=self.console, flush=True)
        else:
            print(f"[PAUSED] {exc.reason} before task {cell.task}, round {cell.round}",
                  file=self.console, flush=True)

    async def _run_cell(self, cell: Cell) -> dict[str, Any] | None:
        arm = self.arms[cell.arm]
        lt = arm.project.task(cell.task)
        env_name = lt.task.environment
        seed = trial_seed(self.seed, cell.task, cell.round)
        spec = TrialSpec(
            task=lt, model=arm.model, seed=seed,
            system_prompt=arm.project.prompts[env_name],
            tools=arm.project.openai_tools(env_name),
            schemas=arm.project.tool_schemas(env_name),
            max_tokens=self.max_tokens, temperature=self.temperature,
        )
        env = ENVIRONMENTS[env_name](lt.fixture, seed)
        step_box = {"step": 0}
        self.counters.current = {"task": cell.task, "arm": cell.arm, "round": cell.round}

        def on_attempt(a: Attempt) -> None:
            self._audit(cell, arm, step_box["step"], a)

        def on_step(step: int) -> None:
            step_box["step"] = step

        started = time.monotonic()
        program = agent_for(arm.project.config, env_name)
        try:
            if program is None:
                trace = await run_trial(spec, env, self.providers[arm.provider], on_attempt,
                                        on_step)
            else:
                trace = await run_program_trial(
                    program, spec, env, self.providers[arm.provider],
                    lambda step, a: self._audit(cell, arm, step, a),
                    root=arm.project.root, stop=self.stop)
        except HaltError as exc:
            self._set_halt(exc, cell)
            return None
        except ProviderError as exc:
            record = self._record(cell, arm, seed, None, env, started)
            record.update(status="provider_error",
                          provider_error={"kind": exc.kind.value, "message": str(exc)[:300]})
        else:
            record = self._record(cell, arm, seed, trace, env, started)
        await self.audit.sync()  # the trial's attempts are on disk before the trial ...
        await self.trials.awrite(record)  # ... and the trial before it counts
        self.counters.trials_done += 1
        return record

    async def adopt(self, trial: dict[str, Any], audit: list[dict[str, Any]]) -> None:
        """Record a trial paid by an earlier run (gate.engine.reuse), audit lines first."""
        for line in audit:
            self.audit.append(line)
        await self.audit.sync()
        await self.trials.awrite(trial)
        self.counters.trials_done += 1

    def _audit(self, cell: Cell, arm: Arm, step: int, a: Attempt) -> None:
        self.counters.calls += 1
        if a.outcome != "ok":
            self.counters.failed_attempts += 1
        self.counters.cost_usd += a.cost_computed_usd
        line: dict[str, Any] = {
            "ts": now_iso(), "arm": cell.arm, "model": arm.model, "task": cell.task,
            "round": cell.round, "step": step, "attempt": a.attempt,
            "request_sha256": a.request_sha256, "outcome": a.outcome,
            "http_status": a.http_status, "response_id": a.response_id,
            "tokens_in": a.prompt_tokens, "tokens_out": a.completion_tokens,
            "cost_reported_usd": a.cost_reported_usd, "cost_computed_usd": a.cost_computed_usd,
            "latency_s": round(a.latency_s, 6),
            "finish_reason": a.finish_reason, "cached_tokens": a.cached_tokens,
        }
        if a.error:
            line["error"] = a.error
        if a.extra:
            line["extra"] = a.extra
        self.audit.append(line)  # made durable (batched) before the trial is recorded

    def _record(
        self, cell: Cell, arm: Arm, seed: int, trace: TrialTrace | None, env: Any, started: float
    ) -> dict[str, Any]:
        from gate.engine.scoring import score_trial

        base: dict[str, Any] = {
            "trial_id": cell.trial_id, "arm": cell.arm, "model": arm.model,
            "task": cell.task, "round": cell.round, "seed": seed, "ts": now_iso(),
            "wall_s": round(time.monotonic() - started, 6),
            "trace_id": trial_trace_id(self.run_id, cell.trial_id),
        }
        if trace is None:
            return base
        lt = arm.project.task(cell.task)
        if isinstance(trace, ProgramTrace):
            base.update(program_fields(trace, env.outcome(), lt))
            return base
        base.update(score_trial(trace, env.outcome(), lt))
        base["status"] = "scored"
        return base

    # --- heartbeat -------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        """heartbeat.jsonl at once and every interval; a console line at every interval, so a
        CI log is never silent while a slow provider answers."""
        self._beat()
        while True:
            await self._sleep(self.heartbeat_interval_s)
            self._beat()
            self._say_alive()

    def _say_alive(self) -> None:
        c = self.counters
        where = (f"task {c.current['task']} ({c.current['arm']}, round {c.current['round']})"
                 if c.current else "no trial started yet")
        print(f"[gate] heartbeat: {c.trials_done} trials done, {c.calls} calls, "
              f"${c.cost_usd:.4f}, current {where}", file=self.console, flush=True)

    def _beat(self) -> None:
        c = self.counters
        self.heartbeat.write({
            "ts": now_iso(), **c.current, "calls": c.calls,
            "failed_attempts": c.failed_attempts, "cost_usd": round(c.cost_usd, 8),
            "trials_done": c.trials_done, "notice": self.notices.last,
        })


class _Progress:
    """A rich bar on a terminal; plain periodic lines in CI logs."""

    def __init__(self, console: TextIO, label: str, total: int) -> None:
        self.console = console
        self.label = label
        self.total = total
        self.done = 0
        self.tty = console.isatty()
        self.step = max(1, total // 10)
        self.quiet = total < 20  # a small batch: the caller's check line says enough
        self._bar: Any = None
        if self.tty and total:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(file=console), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    def advance(self, c: Counters) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1,
                             description=f"{self.label} calls={c.calls} ${c.cost_usd:.4f}")
        elif not self.quiet and (self.done % self.step == 0 or self.done == self.total):
            print(f"[gate] {self.label}: {self.done}/{self.total} trials, {c.calls} calls, "
                  f"${c.cost_usd:.4f}", file=self.console, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


__all__ = ["Arm", "Cell", "CircuitBreakerError", "Engine", "Halt", "trial_seed", "trial_trace_id"]
