"""Running a team's own agent program for one trial (``agent: {command, timeout_s}``).

Per trial: a recording endpoint and an MCP tool server on a loopback port (gate.agent.serve),
then the program, started in the repository root with

    OPENAI_BASE_URL          http://127.0.0.1:PORT/v1 (gate's recording endpoint)
    OPENAI_API_KEY           a random token valid for this trial only
    GATE_MODEL               the arm's model id (the endpoint refuses any other)
    GATE_MCP_URL             the trial's tools, MCP over streamable HTTP
    GATE_TASK_ID, GATE_INSTRUCTION, GATE_SYSTEM_PROMPT_FILE

and only an allowlist of gate's own variables (gate.agent.childproc): never a provider key.

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
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate.agent.childproc import Child, child_environment
from gate.agent.loop import TrialSpec, TrialTrace
from gate.config.schema import AgentProgram, GateConfig
from gate.environments.base import Environment, EnvOutcome
from gate.errors import HaltError
from gate.project.load import LoadedTask
from gate.providers.base import Provider

if TYPE_CHECKING:  # the server side (uvicorn, starlette, mcp) is imported only when used
    from gate.agent.endpoint import AuditSink, TrialSession



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
) -> ProgramTrace:
    """Run the program for one trial; see the module docstring for how it ends."""
    from gate.agent.endpoint import TrialSession
    from gate.agent.serve import serve_trial

    session = TrialSession(spec, env, provider, audit, token=secrets.token_urlsafe(32),
                           trace=ProgramTrace())
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gate-trial-") as tmp:
        prompt_file = Path(tmp) / "system_prompt.md"
        prompt_file.write_text(spec.system_prompt, encoding="utf-8")
        async with serve_trial(session) as served:
            extra = {
                "OPENAI_BASE_URL": served.base_url, "OPENAI_API_KEY": session.token,
                "GATE_MODEL": spec.model, "GATE_MCP_URL": served.mcp_url,
                "GATE_TASK_ID": spec.task.task.id, "GATE_INSTRUCTION": spec.task.task.instruction,
                "GATE_SYSTEM_PROMPT_FILE": str(prompt_file),
            }
            child = await Child.start(program.command, root, child_environment(extra))
            try:
                outcome = await _wait(child, session, program.timeout_s, stop)
            finally:
                await child.end()
    return _finish(session, child, outcome, time.monotonic() - started)


async def _wait(child: Child, session: TrialSession, timeout_s: float,
                stop: asyncio.Event | None) -> str:
    """Until the program exits ("exit"), times out, the trial ends, or the run halts."""
    waits = {asyncio.create_task(child.proc.wait()): "exit",
             asyncio.create_task(session.ended.wait()): "ended"}
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
    if not done:
        return "timeout"
    if session.ended.is_set():
        return "ended"
    return "exit" if child.returncode is not None else "halt"


def _finish(session: TrialSession, child: Child, how: str, wall_s: float) -> ProgramTrace:
    trace = session.trace
    assert isinstance(trace, ProgramTrace)
    trace.latency_s = wall_s
    reason = session.end_reason
    if isinstance(reason, BaseException):
        raise reason  # ProviderError, HaltError, an environment's or gate's own exception
    exit_code = child.returncode if how == "exit" else None
    trace.agent = _agent_record(session, child, exit_code, how)
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
                  how: str) -> dict[str, Any]:
    return {
        "kind": "program",
        "exit_code": exit_code,
        "timed_out": how == "timeout",
        "model_calls": session.model_calls,
        "mcp_calls": session.mcp_calls,
        "rejected_requests": dict(sorted(session.rejected.items())),
        "ignored_fields": sorted(session.ignored_fields),
        "final_answer_chars": len(child.stdout.text().strip()),
    }
