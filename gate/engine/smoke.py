"""``gate smoke``: the preflight drill. Proves every task, fixture and scorer works before any
money is spent (rule 2), that the heartbeat fires (rule 3) and that a 402 trips the circuit
breaker (rule 7). Writes DIR/smoke.json with the config and file hashes it vouches for."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import TextIO

from gate.agent.failures import program_failure, program_failures
from gate.agent.persistent import ProgramPool
from gate.connect import ProviderOptions
from gate.engine.notices import Notices
from gate.engine.run import RunSpec, prepare_run
from gate.project.load import Project
from gate.records import Results, Smoke, SmokeCheck, SmokeScore, SmokeTask, Trial
from gate.rundir import PARTIAL, RunDir


class _HeartbeatCounter(io.StringIO):
    """Passes console text on, except heartbeat lines, which it counts."""

    def __init__(self, other: TextIO) -> None:
        super().__init__()
        self.other = other
        self.beats = 0
        self._dropping = False

    def write(self, s: str) -> int:
        if s.startswith("[gate] heartbeat:"):
            self.beats += 1
            self._dropping = True
        elif not (self._dropping and s == "\n"):
            self._dropping = False
            self.other.write(s)
        else:
            self._dropping = False
        return len(s)

    def flush(self) -> None:
        self.other.flush()


class _Tee(io.StringIO):
    def __init__(self, other: TextIO) -> None:
        super().__init__()
        self.other = other

    def write(self, s: str) -> int:
        self.other.write(s)
        return super().write(s)

    def isatty(self) -> bool:
        return False


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def _score(t: Trial) -> SmokeScore:
    return SmokeScore(success=t.success, reward=t.reward)


async def drill(project: Project, out: Path, seed: int, notices: Notices, started: float,
                programs: ProgramPool) -> Smoke:
    """The drill in ``out``, then smoke.json. The smoke's runs share one pool of agent
    programs (``programs``, which the caller closes): a program in ``agent.mode: persistent``
    is started once for the expert arm (its run and the breaker's) and once for the random
    arm, not once per run."""
    checks, tasks = await _checks(programs, project, out, seed, notices)
    report = Smoke(
        ok=all(c.ok for c in checks),
        checks=checks,
        tasks=[tasks[k] for k in sorted(tasks)],
        config_sha256=project.config_sha256,
        files_sha256=project.hashes,
        seconds=round(time.monotonic() - started, 3),
        subset=project.subset,
    )
    RunDir(out).write_smoke(report)
    return report


async def _run(programs: ProgramPool, project: Project, spec: RunSpec) -> Results:
    """One of the smoke's runs, in the smoke's event loop, with the smoke's programs."""
    session, schedule = prepare_run(project, spec)
    return session.finish(await session.execute_async(schedule, programs))


async def _checks(programs: ProgramPool, project: Project, out: Path, seed: int,
                  notices: Notices) -> tuple[list[SmokeCheck], dict[str, SmokeTask]]:
    """The expert arm's run then the breaker's (which reuses its programs), and, at the same
    time, the random arm's: the runs are independent (each its own directory, simulated
    provider and programs), and an agent program is another process, so two arms at once
    keep both cores busy while the one event loop serves them."""
    tasks = {lt.task.id: SmokeTask(task=lt.task.id) for lt in project.tasks}
    async with asyncio.TaskGroup() as group:
        expert = group.create_task(_expert_checks(programs, project, out, seed, notices, tasks))
        random = group.create_task(_random_checks(programs, project, out, seed, notices, tasks))
    validate = SmokeCheck(name="validate", ok=True, detail=f"{len(project.tasks)} tasks valid")
    expert_checks, breaker = expert.result()
    return [validate, *expert_checks, *random.result(), breaker], tasks


async def _expert_checks(programs: ProgramPool, project: Project, out: Path, seed: int,
                         notices: Notices, tasks: dict[str, SmokeTask],
                         ) -> tuple[list[SmokeCheck], SmokeCheck]:
    """The expert arm solves every task (its program runs); then the breaker's check."""
    checks = []
    expert = await _run(programs, project, RunSpec(
        model="mock/expert", provider=None, rounds=1, out=out / "expert", seed=seed,
        notices=notices, arm_name="expert"))
    trials = RunDir(out / "expert").trials()
    program = program_failures(trials)
    if any(t.agent for t in trials):
        checks.append(SmokeCheck(name="the agent program runs", ok=not program,
                                 detail="; ".join(program) or f"{len(trials)} trials, no "
                                 "non-zero exit, no timeout"))
    failed, not_judged = [], []
    for t in trials:
        tasks[t.task].expert = _score(t)
        if program_failure(t.agent) is not None:
            not_judged.append(t.task)  # the program failed: the task is not blamed
        elif t.status == "environment_error" and t.environment_error is not None:
            err = t.environment_error  # the environment's code raised
            failed.append(f"{t.task} (environment error: {err.type} in {err.phase}"
                          f" at {err.file}:{err.line})")
        elif not t.success:
            failed.append(t.task)
    missing = sorted(set(tasks) - {t.task for t in trials})
    checks.append(SmokeCheck(
        name="expert solves every task",
        ok=not failed and not not_judged and not missing and expert.status == "complete",
        detail=(f"{len(trials) - len(failed) - len(not_judged)}/{len(tasks)} solved"
                + (f"; not judged, the agent program failed: {', '.join(not_judged)}"
                   if not_judged else "")
                + (f"; broken task or fixture: {', '.join(failed)}" if failed else "")
                + (f"; not run: {', '.join(missing)}" if missing else "")),
    ))
    return checks, await _breaker_check(programs, project, out / "breaker", seed, notices)


async def _random_checks(programs: ProgramPool, project: Project, out: Path, seed: int,
                         notices: Notices, tasks: dict[str, SmokeTask]) -> list[SmokeCheck]:
    """The random arm scores every task, and its heartbeat fires."""
    interval = 0.02
    quiet = _HeartbeatCounter(notices.console)  # a beat every 20 ms would drown the log
    run_random = await _run(programs, project, RunSpec(
        model="mock/random", provider=None, rounds=1, out=out / "random", seed=seed,
        notices=Notices(quiet), arm_name="random", heartbeat_interval_s=interval))
    rtrials = RunDir(out / "random").trials()
    null_scores = [t.task for t in rtrials if t.reward is None]
    for t in rtrials:
        tasks[t.task].random = _score(t)
    beats = RunDir(out / "random").heartbeats()
    return [
        SmokeCheck(
            name="random scores every task",
            ok=len(rtrials) == len(tasks) and not null_scores,
            detail=f"{len(rtrials)} scored, success rate "
                   f"{_rate(run_random.arms['random'].success_rate)}; not scored: "
                   f"{', '.join(null_scores) or 'none'}"),
        SmokeCheck(
            name="heartbeat fires",
            ok=len(beats) >= 2 and quiet.beats >= 1,  # read_jsonl validated every line's fields
            detail=f"{len(beats)} heartbeat lines at {interval}s interval "
                   f"({quiet.beats} console heartbeat lines, not shown)"),
    ]


async def _breaker_check(programs: ProgramPool, project: Project, out: Path, seed: int,
                         notices: Notices) -> SmokeCheck:
    tee = _Tee(notices.console)
    after = 5
    notices.line(f"[gate] smoke: simulating a 402 (payment required) after {after} calls: the "
                 "[CIRCUIT BREAKER] line below is expected")
    # the expert arm again (its programs too), with a 402 after ``after`` calls
    res = await _run(programs, project, RunSpec(
        model="mock/expert", provider=None, rounds=1, out=out, seed=seed, notices=Notices(tee),
        arm_name="expert", options=ProviderOptions(payment_required_after=after)))
    printed = "[CIRCUIT BREAKER]" in tee.getvalue()
    notices.line("[gate] smoke: end of the simulated 402 check")
    partial = (out / PARTIAL).exists()
    ok = res.status == "halted" and printed and partial
    return SmokeCheck(name="402 trips the circuit breaker", ok=ok,
                      detail=f"status {res.status}, [CIRCUIT BREAKER] "
                             f"{'printed' if printed else 'NOT printed'}, {PARTIAL} "
                             f"{'written' if partial else 'NOT written'}, 402 injected after "
                             f"{after} calls")
