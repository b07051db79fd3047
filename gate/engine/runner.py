"""Runs trials: bounded concurrency, audit of every provider attempt, checkpoint of every
finished trial with its transcript, heartbeat with cost, pause file, and the halt path of the
circuit breaker.

The engine never decides verdicts; it turns cells (arm x task x round) into trial records.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gate.agent.loop import TrialSpec, TrialTrace, run_trial
from gate.agent.persistent import ProgramPool
from gate.agent.program import ProgramTrace, agent_for, program_fields, run_program_trial
from gate.agent.transcript import TranscriptRecorder
from gate.engine.notices import Notices
from gate.engine.transcripts import build_transcript
from gate.environments.base import EnvOutcome
from gate.environments.registry import EnvironmentCodeError, GuardedEnvironment
from gate.errors import CircuitBreakerError, HaltError, PausedError
from gate.project.load import Project
from gate.providers.base import Attempt, AttemptStart, Provider, ProviderError
from gate.records import (
    ArmSpec,
    AuditAttempt,
    AuditStarted,
    HaltRecord,
    Heartbeat,
    Transcript,
    Trial,
    TrialEnvironmentError,
    TrialProviderError,
)
from gate.rundir import TRANSCRIPTS, RunDir
from gate.rundir.audit import STARTED
from gate.rundir.jsonl import CompressedJsonlWriter, line_sha256

log = logging.getLogger(__name__)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def trial_trace_id(run_id: str, trial_id: str) -> str:
    """The trial's OpenTelemetry trace id (32 hex digits), fixed by the run id and the trial
    id, so a resumed run and a later ``gate export-otel`` name the same trace."""
    return hashlib.sha256(f"gate-trace|{run_id}|{trial_id}".encode()).hexdigest()[:32]


def _manifest_run_id(out_dir: Path) -> str:
    run = RunDir(out_dir)
    return run.manifest().run_id if run.has_manifest() else ""


def trial_seed(run_seed: int, task_id: str, occurrence: int) -> int:
    """Same for every arm of a unit (the pairing of the paired design), and keyed by the
    task's occurrence in the plan (its round under the rounds schedule), not by the unit's
    position: runs with different plans give a task's j-th unit the same seed."""
    digest = hashlib.sha256(f"{run_seed}|{task_id}|{occurrence}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Arm:
    """What is compared: a model with the prompt set and tool set it runs with."""

    name: str
    model: str
    provider: str
    project: Project  # prompts and tools as this arm sees them

    def describe(self) -> ArmSpec:
        return ArmSpec(name=self.name, model=self.model, provider=self.provider,
                       prompts_tools=self.project.prompt_tool_source)


@dataclass(frozen=True, order=True)
class Cell:
    round: int
    task: str
    arm: str
    occurrence: int = 0  # the task's occurrence in the plan (trial seed, reuse); 0: the round

    @property
    def seed_key(self) -> int:
        return self.occurrence or self.round

    @property
    def trial_id(self) -> str:
        return f"{self.arm}/{self.task}/r{self.round}"


@dataclass
class Counters:
    calls: int = 0
    failed_attempts: int = 0
    cost_usd: float = 0.0
    trials_done: int = 0
    current: Cell | None = None  # the cell started last


@dataclass(frozen=True)
class EngineOptions:
    """How an engine runs its cells: the run's seed, its limits and its console."""

    seed: int
    concurrency: int
    max_tokens: int
    temperature: float
    heartbeat_interval_s: float
    pause_file: Path | None = None  # a halt (paused) before the next cell once it exists
    notices: Notices = field(default_factory=Notices)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests drive the heartbeat


class Engine:
    def __init__(self, out_dir: Path, arms: dict[str, Arm], providers: dict[str, Provider],
                 options: EngineOptions, programs: ProgramPool | None = None) -> None:
        self.out_dir = out_dir
        self.arms = arms
        self.providers = providers
        self.options = options
        self.notices = options.notices
        self.halt: HaltRecord | None = None
        self.stop = asyncio.Event()  # set by the circuit breaker: agent programs are ended
        # persistent agent programs: they live as long as the engine (every check of a sweep),
        # or as long as the caller that lent the pool (the runs of gate smoke)
        self._own_programs = programs is None
        self.programs = programs or ProgramPool(options.concurrency)
        self.run_id = _manifest_run_id(out_dir)  # written before the engine starts
        self.counters = Counters()
        run = RunDir(out_dir)
        self.audit = run.audit_writer()
        self.trials = run.trials_writer()
        self.heartbeat = run.heartbeat_writer()
        self.transcripts = CompressedJsonlWriter(run.file(TRANSCRIPTS), Transcript)

    @property
    def seed(self) -> int:
        """The run's seed: every trial's seed derives from it (``trial_seed``)."""
        return self.options.seed

    async def aclose(self) -> None:
        """End the engine's agent programs and their trial server (unless the pool was lent),
        then close the run's files."""
        try:
            if self._own_programs:
                await self.programs.aclose()
        finally:
            for w in (self.audit, self.transcripts, self.trials, self.heartbeat):
                w.close()

    # --- running ---------------------------------------------------------------------

    async def run_cells(self, cells: list[Cell], label: str = "trials") -> list[Trial]:
        """Run cells with bounded concurrency, in order of start. Stops starting on a halt."""
        records: list[Trial] = []
        queue = list(cells)
        total = len(queue)
        sem = asyncio.Semaphore(self.options.concurrency)
        progress = _Progress(self.notices, label, total)
        beat = asyncio.create_task(self._heartbeat_loop())

        async def worker(cell: Cell) -> None:
            async with sem:
                if self.halt is not None or self._check_pause(cell):
                    return
                record = await self._run_cell(cell)
            if record is not None:  # made durable outside the slot: the next trial starts
                await self._commit(record)
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
        return sorted(records, key=lambda r: (r.round, r.task, r.arm))

    def _check_pause(self, cell: Cell) -> bool:
        pause_file = self.options.pause_file
        if pause_file is not None and pause_file.exists():
            self._set_halt(PausedError(f"pause file {pause_file} exists"), cell)
            return True
        return False

    def _set_halt(self, exc: HaltError, cell: Cell) -> None:
        if self.halt is not None:
            return
        kind = "paused" if isinstance(exc, PausedError) else "circuit_breaker"
        self.halt = HaltRecord(kind=kind, reason=exc.reason, task=cell.task, round=cell.round)
        if kind == "circuit_breaker":
            self.stop.set()  # running agent programs are ended at once
        self.notices.halt(kind, exc.reason, cell.task, cell.round)

    async def _run_cell(self, cell: Cell) -> Trial | None:
        arm = self.arms[cell.arm]
        lt = arm.project.task(cell.task)
        env_name = lt.task.environment
        seed = trial_seed(self.seed, cell.task, cell.seed_key)
        spec = TrialSpec(
            task=lt, model=arm.model, seed=seed,
            system_prompt=arm.project.prompts[env_name],
            tools=arm.project.openai_tools(env_name),
            schemas=arm.project.tool_schemas(env_name),
            max_tokens=self.options.max_tokens, temperature=self.options.temperature,
        )
        self.counters.current = cell
        on_attempt = _AuditSink(self, cell, arm)

        def on_step(step: int) -> None:
            on_attempt.step = step

        started = time.monotonic()
        program = agent_for(arm.project.config, env_name)
        recorder = TranscriptRecorder()
        try:
            env = GuardedEnvironment(arm.project.environment(env_name), lt.fixture, seed)
            if program is None:
                trace = await run_trial(spec, env, self.providers[arm.provider], on_attempt,
                                        on_step, transcript=recorder)
            else:
                trace = await run_program_trial(
                    program, spec, env, self.providers[arm.provider],
                    _ProgramAudit(self, cell, arm),
                    root=arm.project.root, stop=self.stop, pool=self.programs, arm=cell.arm,
                    transcript=recorder)
            outcome = env.outcome()
        except HaltError as exc:
            self._set_halt(exc, cell)
            return None
        except ProviderError as exc:
            lost = TrialProviderError(kind=exc.kind.value, message=str(exc)[:300])
            record = self._record(cell, arm, seed, None, None, started, lost=lost)
        except EnvironmentCodeError as exc:  # the harness's fault: neither model nor provider
            fault = TrialEnvironmentError.model_validate(exc.fault.as_record())
            record = self._record(cell, arm, seed, None, None, started, env_error=fault)
            self.notices.line(f"[gate] environment_error in {cell.trial_id}: "
                              f"{exc.fault.describe()}")
        else:
            record = self._record(cell, arm, seed, trace, outcome, started)
        return self._with_transcript(record, recorder, lt.task.instruction)

    def _with_transcript(self, record: Trial, recorder: TranscriptRecorder,
                         instruction: str) -> Trial:
        """Append the trial's transcript (durable with the trial) and cite its hash."""
        transcript = build_transcript(recorder, trial_id=record.trial_id, arm=record.arm,
                                      task=record.task, round_no=record.round,
                                      instruction=instruction)
        self.transcripts.append(transcript)
        return record.model_copy(update={"transcript_sha256": line_sha256(transcript)})

    async def _commit(self, record: Trial) -> None:
        """The trial's attempts and transcript on disk, then the trial, and only then does it
        count."""
        await self.trials.commit_after((self.audit, self.transcripts), record)
        self.counters.trials_done += 1

    async def adopt(self, trial: Trial, audit: list[AuditAttempt],
                    transcript: Transcript | None = None) -> None:
        """Record a trial paid by an earlier run (gate.engine.reuse), audit lines and its
        transcript first. It is traced under this run's trace id (a link names the original)."""
        for line in audit:
            self.audit.append(line)
        if transcript is not None:
            self.transcripts.append(transcript)
        await self._commit(trial.model_copy(update={
            "trace_id": trial_trace_id(self.run_id, trial.trial_id)}))

    def _audit_start(self, cell: Cell, arm: Arm, step: int, s: AttemptStart) -> None:
        """The ``started`` line: flushed to the OS before the request body is sent (no fsync
        here, so that nothing slow sits between the two; the trial's ``sync`` covers it)."""
        self.audit.append(AuditStarted(
            phase=STARTED, attempt_id=s.attempt_id, ts=now_iso(), arm=cell.arm,
            model=arm.model, task=cell.task, round=cell.round, step=step,
            attempt=s.attempt, request_sha256=s.request_sha256,
        ))

    def _audit(self, cell: Cell, arm: Arm, step: int, a: Attempt) -> None:
        self.counters.calls += 1
        if a.outcome != "ok":
            self.counters.failed_attempts += 1
        self.counters.cost_usd += a.cost_computed_usd
        self.audit.append(AuditAttempt(  # made durable (batched) before the trial is recorded
            ts=now_iso(), arm=cell.arm, model=arm.model, task=cell.task, round=cell.round,
            step=step, attempt=a.attempt, request_sha256=a.request_sha256, outcome=a.outcome,
            http_status=a.http_status, response_id=a.response_id, tokens_in=a.prompt_tokens,
            tokens_out=a.completion_tokens, cost_reported_usd=a.cost_reported_usd,
            cost_computed_usd=a.cost_computed_usd, latency_s=round(a.latency_s, 6),
            error=a.error or None, extra=dict(a.extra), attempt_id=a.attempt_id or None,
            finish_reason=a.finish_reason, cached_tokens=a.cached_tokens,
        ))

    def _record(
        self, cell: Cell, arm: Arm, seed: int, trace: TrialTrace | None,
        outcome: EnvOutcome | None, started: float, *,
        lost: TrialProviderError | None = None,
        env_error: TrialEnvironmentError | None = None,
    ) -> Trial:
        from gate.agent.scoring import score_trial

        head = {
            "trial_id": cell.trial_id, "arm": cell.arm, "model": arm.model,
            "task": cell.task, "round": cell.round, "seed": seed, "ts": now_iso(),
            "wall_s": round(time.monotonic() - started, 6),
            "trace_id": trial_trace_id(self.run_id, cell.trial_id),
        }
        if env_error is not None:
            return Trial(**head, status="environment_error", environment_error=env_error)
        if trace is None or outcome is None:
            return Trial(**head, status="provider_error", provider_error=lost)
        lt = arm.project.task(cell.task)
        if isinstance(trace, ProgramTrace):
            return Trial(**head, **program_fields(trace, outcome, lt))
        scores = score_trial(trace, outcome, lt)
        return Trial(**head, status="scored", **dict(scores))

    # --- heartbeat -------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        """heartbeat.jsonl at once and every interval; a console line at every interval, so a
        CI log is never silent while a slow provider answers."""
        self._beat()
        while True:
            await self.options.sleep(self.options.heartbeat_interval_s)
            self._beat()
            self._say_alive()

    def _say_alive(self) -> None:
        c, cell = self.counters, self.counters.current
        where = (f"task {cell.task} ({cell.arm}, round {cell.round})" if cell is not None
                 else "no trial started yet")
        self.notices.line(f"[gate] heartbeat: {c.trials_done} trials done, {c.calls} calls, "
                          f"${c.cost_usd:.4f}, current {where}")

    def _beat(self) -> None:
        c, cell = self.counters, self.counters.current
        self.heartbeat.write(Heartbeat(
            ts=now_iso(), task=cell and cell.task, arm=cell and cell.arm,
            round=cell and cell.round, calls=c.calls, failed_attempts=c.failed_attempts,
            cost_usd=round(c.cost_usd, 8), trials_done=c.trials_done, notice=self.notices.last,
        ))


class _AuditSink:
    """One trial's attempt sink, two-phase (``TwoPhaseSink``): started, then outcome."""

    def __init__(self, engine: Engine, cell: Cell, arm: Arm) -> None:
        self.engine = engine
        self.cell = cell
        self.arm = arm
        self.step = 0

    def started(self, start: AttemptStart) -> None:
        self.engine._audit_start(self.cell, self.arm, self.step, start)

    def __call__(self, attempt: Attempt) -> None:
        self.engine._audit(self.cell, self.arm, self.step, attempt)


class _ProgramAudit:
    """The audit writer of an agent program's trial, called with the step (two-phase too)."""

    def __init__(self, engine: Engine, cell: Cell, arm: Arm) -> None:
        self.engine = engine
        self.cell = cell
        self.arm = arm

    def started(self, step: int, start: AttemptStart) -> None:
        self.engine._audit_start(self.cell, self.arm, step, start)

    def __call__(self, step: int, attempt: Attempt) -> None:
        self.engine._audit(self.cell, self.arm, step, attempt)


class _Progress:
    """A rich bar on a terminal; plain periodic lines in CI logs."""

    def __init__(self, notices: Notices, label: str, total: int) -> None:
        self.notices = notices
        console = notices.console
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
            self.notices.line(f"[gate] {self.label}: {self.done}/{self.total} trials, "
                              f"{c.calls} calls, ${c.cost_usd:.4f}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


__all__ = ["Arm", "Cell", "CircuitBreakerError", "Engine", "EngineOptions", "trial_seed",
           "trial_trace_id"]
