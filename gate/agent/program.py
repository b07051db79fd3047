"""Running a team's own agent program for one trial (``agent: {command, timeout_s}``).

Per trial: a recording endpoint and an MCP tool server of its own, on the run's loopback server
(gate.agent.serve), then the program, started in the repository root with

    OPENAI_BASE_URL          http://127.0.0.1:PORT/trial/ROUTE/v1 (gate's recording endpoint)
    OPENAI_API_KEY           a random token valid for this trial only
    GATE_MODEL               the arm's model id (the endpoint refuses any other)
    GATE_MODEL_ALIAS         the same model for SDKs that split ``prefix/model`` (no ``/``)
    GATE_MCP_URL             the trial's tools, MCP over streamable HTTP
    GATE_TASK_ID, GATE_INSTRUCTION, GATE_SYSTEM_PROMPT_FILE

and only an allowlist of gate's own variables (gate.agent.childproc), the names in
``agent.pass_env`` and the constants of ``agent.env``: never a provider key.

How a trial ends:

- exit 0: graded on the environment's end state, like the built-in loop;
- a non-zero exit or the timeout: the agent's failure (scored, success false, reward 0), with
  the tail of its stderr;
- no call through the endpoint at all: not scored (``no_model_call``): no claim without an
  artifact;
- a provider error after retries: ``ProviderError`` is raised, the trial is lost to the
  provider; a halt: ``HaltError`` is raised; an exception from the environment's code is
  re-raised as it is. The program is ended first in every case, the run's halt included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate.agent.childproc import Child, child_environment
from gate.agent.loop import TrialSpec, TrialTrace
from gate.agent.persistent import Key, ProgramPool
from gate.agent.transcript import TranscriptRecorder
from gate.config.schema import AgentProgram, GateConfig
from gate.environments.base import Environment, EnvOutcome
from gate.errors import ConfigError, HaltError
from gate.project.agent_check import agents_extra_problem
from gate.project.load import LoadedTask
from gate.providers.base import Provider

if TYPE_CHECKING:  # the server side (uvicorn, starlette, mcp) is imported only when used
    from gate.agent.endpoint import AuditSink, TrialSession
    from gate.agent.serve import Served

LATE_ANSWER_S = 5.0
"""How long a persistent program whose trial gate ended may take to answer it and stay."""


def program_environment(program: AgentProgram, trial: dict[str, str],
                        parent: dict[str, str] | None = None) -> dict[str, str]:
    """The allowlist, ``pass_env`` from gate's environment, ``env``, then the trial's own."""
    source = dict(os.environ) if parent is None else parent
    passed = {k: source[k] for k in program.pass_env if k in source}
    return child_environment({**passed, **program.env, **trial}, source)


def agent_for(config: GateConfig, environment: str) -> AgentProgram | None:
    """The program that runs trials of ``environment``, or None for the built-in loop."""
    choice = config.agent_overrides.get(environment, config.agent)
    return choice if isinstance(choice, AgentProgram) else None


@dataclass
class ProgramTrace(TrialTrace):
    """A program's trial: the built-in trace fields plus what the program did."""

    status: str = "scored"  # or "no_model_call"
    failure: str | None = None  # "agent_exit" | "agent_timeout"
    agent: dict[str, Any] = field(default_factory=dict)

    def judge(self, outcome: EnvOutcome) -> EnvOutcome:
        """A failed program fails the trial, whatever state it left."""
        if self.failure is None:
            return outcome
        return EnvOutcome(False, 0.0, {"agent_failure": self.failure, "end_state": outcome.detail})


def program_fields(trace: ProgramTrace, outcome: EnvOutcome, lt: LoadedTask) -> dict[str, Any]:
    """The trial record's fields for a program's trial (scored or not)."""
    from gate.agent.scoring import score_trial

    if trace.status != "scored":
        return {"environment": lt.task.environment, "difficulty": lt.task.difficulty,
                "status": trace.status, "agent": trace.agent}
    fields = dict(score_trial(trace, trace.judge(outcome), lt))
    fields.update(status="scored", agent=trace.agent)
    return fields


async def run_program_trial(
    program: AgentProgram,
    spec: TrialSpec,
    env: Environment,
    provider: Provider,
    audit: AuditSink,
    *,
    root: Path,
    stop: asyncio.Event | None = None,
    pool: ProgramPool | None = None,
    arm: str = "",
    transcript: TranscriptRecorder | None = None,
) -> ProgramTrace:
    """Run the program for one trial; see the module docstring for how it ends.
    ``transcript`` records what went through the endpoint, and the program's stdout as the
    final answer."""
    problem = agents_extra_problem()
    if problem is not None:  # gate validate says so first; a caller of the API learns it here
        raise ConfigError.one("gate.yaml", None, problem)
    from gate.agent.endpoint import TrialSession

    session = TrialSession(spec, env, provider, audit, token=secrets.token_urlsafe(32),
                           trace=ProgramTrace(transcript=transcript or TranscriptRecorder()))
    if program.mode == "persistent" and pool is not None:
        return await _persistent_trial(program, session, pool, ProgramPool.key(arm, program),
                                       root, stop)
    return await _per_trial(program, session, root, stop, pool, arm)


async def _per_trial(program: AgentProgram, session: TrialSession, root: Path,
                     stop: asyncio.Event | None, pool: ProgramPool | None,
                     arm: str) -> ProgramTrace:
    from gate.agent.endpoint import model_alias

    spec = session.spec
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gate-trial-") as tmp:
        prompt_file = Path(tmp) / "system_prompt.md"
        prompt_file.write_text(spec.system_prompt, encoding="utf-8")
        async with _served(session, pool) as served:
            extra = {
                "OPENAI_BASE_URL": served.base_url, "OPENAI_API_KEY": session.token,
                "GATE_MODEL": spec.model, "GATE_MODEL_ALIAS": model_alias(spec.model),
                "GATE_MCP_URL": served.mcp_url,
                "GATE_TASK_ID": spec.task.task.id, "GATE_INSTRUCTION": spec.task.task.instruction,
                "GATE_SYSTEM_PROMPT_FILE": str(prompt_file),
            }
            child = await Child.start(program.command, root, program_environment(program, extra),
                                      nice=pool.nice(arm) if pool is not None else 0)
            try:
                outcome = await _wait(child, session, program.timeout_s, stop)
            finally:
                await child.end()
    return _finish(session, child, outcome, time.monotonic() - started)


@contextlib.asynccontextmanager
async def _served(session: TrialSession, pool: ProgramPool | None) -> AsyncIterator[Served]:
    """The trial's endpoint and tools: on the run's server, or on a server of its own."""
    from gate.agent.serve import serve_trial

    if pool is None:
        async with serve_trial(session) as served:
            yield served
        return
    server = await pool.server()
    async with server.trial(session) as served:
        yield served


def persistent_environment(program: AgentProgram, model: str) -> dict[str, str]:
    """The environment a persistent program of an arm of ``model`` starts with."""
    from gate.agent.endpoint import model_alias

    return program_environment(program, {"GATE_MODEL": model,
                                         "GATE_MODEL_ALIAS": model_alias(model),
                                         "GATE_MODE": "persistent"})


async def prestart_programs(pool: ProgramPool, config: GateConfig, arm: str, model: str,
                            root: Path) -> None:
    """Start, ahead of the arm's first trial, one process of every persistent program the
    configuration names (``agent`` and ``agent_overrides``)."""
    if agents_extra_problem() is not None:
        return  # the trial says so (run_program_trial)
    programs = [config.agent, *config.agent_overrides.values()]
    seen: set[Key] = set()
    for program in programs:
        if isinstance(program, AgentProgram) and program.mode == "persistent":
            key = ProgramPool.key(arm, program)
            if key not in seen:
                seen.add(key)
                await pool.prestart(key, program, root, persistent_environment(program, model))


async def _persistent_trial(program: AgentProgram, session: TrialSession, pool: ProgramPool,
                            key: Key, root: Path, stop: asyncio.Event | None) -> ProgramTrace:
    env = persistent_environment(program, session.spec.model)
    async with pool.lease(key, program, root, env, stop) as lease:
        started = time.monotonic()
        session.on_contact = lease.started  # its first request: the process has started
        outcome, answer = await _give_trial(lease.child, session, pool, program.timeout_s, stop)
        if isinstance(session.end_reason, HaltError) and stop is not None:
            stop.set()  # the run halts (the engine says so next): before this process is ended
            # and frees a place, so that no trial waiting for one starts a process
        # it answered (its trial, or one gate ended and it answered within the grace): it takes
        # the next trial; else it is ended and the next trial starts afresh
        lease.keep = outcome == "answered" or (outcome == "ended" and answer is not None)
    return _finish(session, lease.child, outcome, time.monotonic() - started, answer)


async def _give_trial(child: Child, session: TrialSession, pool: ProgramPool, timeout_s: float,
                      stop: asyncio.Event | None) -> tuple[str, str | None]:
    """Serve the trial, write its line, wait for the answer (or the end)."""
    from gate.agent.endpoint import model_alias

    spec = session.spec
    async with _served(session, pool) as served:
        while child.lines is not None and not child.lines.empty():
            child.lines.get_nowait()  # extra lines of an earlier trial are not this answer
        line = json.dumps({
            "task_id": spec.task.task.id, "instruction": spec.task.task.instruction,
            "system_prompt": spec.system_prompt, "base_url": served.base_url,
            "api_key": session.token, "model": spec.model,
            "model_alias": model_alias(spec.model), "mcp_url": served.mcp_url})
        answer: list[str] = []
        outcome = "exit"
        if await child.send(line):
            outcome = await _wait(child, session, timeout_s, stop, answer)
            if outcome == "ended" and not answer and not isinstance(session.end_reason, HaltError):
                await _late_answer(child, stop, answer)
    if outcome == "exit":
        await child.end()  # collect its exit code and the rest of its stderr
    return outcome, (answer[0] if answer else None)


async def _wait(child: Child, session: TrialSession, timeout_s: float,
                stop: asyncio.Event | None, answer: list[str] | None = None) -> str:
    """Until the program exits ("exit"), answers ("answered", persistent programs), times out,
    the trial ends, or the run halts."""
    waits: dict[asyncio.Task[Any], str] = {
        asyncio.create_task(child.proc.wait()): "exit",
        asyncio.create_task(session.ended.wait()): "ended"}
    done = await _first(waits, child, stop, timeout_s, answer)
    if not done:
        return "timeout"
    if session.end_reason is not None:  # set as the endpoint answers, before ``ended`` fires
        return "ended"
    if answer:
        return "answered"
    return "exit" if child.returncode is not None else "halt"


async def _late_answer(child: Child, stop: asyncio.Event | None, answer: list[str]) -> None:
    """gate ended a persistent program's trial (step limit, provider error) while it worked:
    its answer line within ``LATE_ANSWER_S`` (it was told by the endpoint's error) lets the
    process take the next trial."""
    await _first({asyncio.create_task(child.proc.wait()): "exit"}, child, stop, LATE_ANSWER_S,
                 answer)


async def _first(waits: dict[asyncio.Task[Any], str], child: Child, stop: asyncio.Event | None,
                 timeout_s: float, answer: list[str] | None) -> set[asyncio.Task[Any]]:
    """Wait for the first of ``waits``, the program's answer line and the run's halt; the line
    (if it came) is appended to ``answer``."""
    if child.lines is not None and answer is not None:
        waits[asyncio.create_task(child.lines.get())] = "answered"
    if stop is not None:
        waits[asyncio.create_task(stop.wait())] = "halt"
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        for task in waits:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for task in done:
        if waits[task] == "answered" and answer is not None and not task.cancelled():
            answer.append(str(task.result()))
    return done


def _final_answer(answer: str | None, child: Child) -> str:
    """The trial's final answer: a persistent program's answer line (none if it gave none:
    its stdout holds other trials' answers), else its stdout."""
    if answer is not None:
        return answer.strip()
    return "" if child.lines is not None else child.stdout.text().strip()


def _finish(session: TrialSession, child: Child, how: str, wall_s: float,
            answer: str | None = None) -> ProgramTrace:
    trace = session.trace
    assert isinstance(trace, ProgramTrace)
    trace.latency_s = wall_s
    reason = session.end_reason
    if isinstance(reason, BaseException):
        raise reason  # ProviderError, HaltError, an environment's or gate's own exception
    exit_code = child.returncode if how == "exit" else None
    if how == "answered":
        how, exit_code = "exit", 0  # a persistent program's answer: a clean end of the trial
    trace.transcript.final_answer = _final_answer(answer, child) or None
    trace.agent = _agent_record(session, child, exit_code, how, answer)
    if how == "halt":
        raise HaltError("the run halted while the agent program was running")
    if session.model_calls == 0:
        trace.status = "no_model_call"
        trace.agent["stderr_tail"] = child.stderr_tail()
    elif how == "timeout":
        trace.failure, trace.ended = "agent_timeout", "agent_timeout"
    elif how == "exit" and exit_code != 0:
        trace.failure, trace.ended = "agent_exit", "agent_exit"
    elif how == "exit":
        trace.ended = "final_answer"
    if trace.failure is not None:
        trace.agent["stderr_tail"] = child.stderr_tail()
    return trace


def _agent_record(session: TrialSession, child: Child, exit_code: int | None,
                  how: str, answer: str | None) -> dict[str, Any]:
    return {
        "kind": "program",
        "exit_code": exit_code,
        "timed_out": how == "timeout",
        "model_calls": session.model_calls,
        "mcp_calls": session.mcp_calls,
        "rejected_requests": dict(sorted(session.rejected.items())),
        "ignored_fields": sorted(session.ignored_fields),
        "replaced_fields": sorted(session.replaced_fields),
        "unseeded_calls": session.unseeded_calls,
        "final_answer_chars": len(_final_answer(answer, child)),
    }
