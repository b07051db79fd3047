"""``agent.mode: persistent``: the example agent is started once per arm and solves every trial
from JSON lines on stdin; per-trial endpoints, tokens and accounting stay per trial; a program
that dies mid-trial fails that trial only and is started again for the next."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

import pytest
from agent_support import EXAMPLE, PROGRAMS, make_project

from gate.agent.persistent import BACKGROUND, ProgramPool
from gate.cli import main
from gate.config.schema import AgentProgram
from gate.engine.smoke_start import smoke_command
from gate.errors import CircuitBreakerError, ConfigError, HaltError
from gate.project.load import Project, load_project
from gate.rundir.audit import attempts
from gate.rundir.jsonl import read_jsonl


def _persistent(script: Path, *args: str) -> dict:  # type: ignore[type-arg]
    return {"command": [sys.executable, str(script), *args], "timeout_s": 60,
            "mode": "persistent"}


@pytest.mark.slow  # end to end: not in the fast loop
def test_example_agent_in_persistent_mode_solves_every_task(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "p", agent=_persistent(EXAMPLE), run={"concurrency": 4})
    out = tmp_path / "r"
    assert main(["run", "--config", str(cfg), "--model", "mock/expert", "--out", str(out)]) == 0
    trials = read_jsonl(out / "trials.jsonl")
    assert len(trials) == 3
    assert all(t["success"] and t["agent"]["exit_code"] == 0 for t in trials), trials
    audit = attempts(read_jsonl(out / "audit.jsonl"))
    assert len(audit) == sum(t["agent"]["model_calls"] for t in trials)
    assert sorted(a["response_id"] for a in audit) == sorted(
        i for t in trials for i in t["response_ids"])
    assert all(t["agent"]["final_answer_chars"] > 0 for t in trials)


@pytest.mark.slow  # end to end: not in the fast loop
def test_one_process_per_slot_and_a_crash_fails_only_its_trial(tmp_path: Path) -> None:
    program = PROGRAMS / "persistent_probe.py"
    cfg = make_project(tmp_path / "p", agent=_persistent(program), run={"concurrency": 1})
    out = tmp_path / "r"
    main(["run", "--config", str(cfg), "--model", "mock/expert", "--out", str(out)])
    trials = {t["task"]: t for t in read_jsonl(out / "trials.jsonl")}
    pids = json.loads((tmp_path / "p" / "agent-log" / "pids.json").read_text())
    crashed = "incident-hard-02-retry-storm-two-faults"  # the probe dies on this task
    assert trials[crashed]["ended"] == "agent_exit"
    assert trials[crashed]["agent"]["exit_code"] == 4
    assert trials[crashed]["agent"]["final_answer_chars"] == 0  # not an earlier trial's answer
    others = [t for name, t in trials.items() if name != crashed]
    assert all(t["ended"] == "final_answer" for t in others)
    # three trials, one at a time (concurrency 1): the process that crashed was replaced once
    assert len(set(pids.values())) == 2
    tokens = [t for t in json.loads((tmp_path / "p" / "agent-log" / "tokens.json").read_text())]
    assert len(set(tokens)) == 3  # a fresh token per trial


@pytest.mark.slow  # end to end: not in the fast loop
def test_a_program_that_answers_the_trial_gate_ended_takes_the_next(tmp_path: Path) -> None:
    """The step limit ends the trial; the program is told by the endpoint's 400, answers, and
    stays for the next trial (one process for all); its answer is that trial's final answer."""
    program = PROGRAMS / "step_limit_probe.py"
    cfg = make_project(tmp_path / "p", agent=_persistent(program), run={"concurrency": 1})
    out = tmp_path / "r"
    main(["run", "--config", str(cfg), "--model", "mock/expert", "--out", str(out)])
    trials = read_jsonl(out / "trials.jsonl")
    pids = json.loads((tmp_path / "p" / "agent-log" / "pids.json").read_text())
    assert len(trials) == 3
    assert len(pids) == 3
    assert len(set(pids.values())) == 1
    assert all(t["ended"] == "step_limit" for t in trials)
    for t in trials:
        answer = json.dumps({"task_id": t["task"], "stopped": 400})
        assert t["agent"]["final_answer_chars"] == len(answer)
    audit = attempts(read_jsonl(out / "audit.jsonl"))
    assert len(audit) == sum(t["agent"]["model_calls"] for t in trials)
    assert all(t["agent"]["model_calls"] == t["steps"] for t in trials)


@pytest.mark.slow  # end to end: not in the fast loop
def test_a_sweep_keeps_each_arms_process_from_check_to_check(tmp_path: Path) -> None:
    """The programs live as long as the run: a sweep of three checks (one trial at a time)
    starts one process per arm, not one per arm and check."""
    program = PROGRAMS / "persistent_probe.py"
    easy = ("incident/incident-easy-01-cache-crashed.yaml",
            "orders/orders-easy-01-cancel-pending-order.yaml")
    cfg = make_project(tmp_path / "p", tasks=easy, agent=_persistent(program),
                       run={"concurrency": 1}, max_rounds=3)
    out = tmp_path / "sweep"
    main(["sweep", "--config", str(cfg), "--candidate", "mock/expert", "--baseline",
          "mock/expert", "--out", str(out)])
    trials = read_jsonl(out / "trials.jsonl")
    log = json.loads((tmp_path / "p" / "agent-log" / "pid_log.json").read_text())
    assert len(trials) == len(log) == 12  # 2 tasks x 3 rounds x 2 arms, all through the probe
    assert len({t["round"] for t in trials}) > 1  # several checks (batches)
    assert len({pid for *_, pid in log}) == 2


@pytest.mark.slow  # end to end: not in the fast loop
def test_the_smoke_starts_one_process_per_model(tmp_path: Path) -> None:
    """gate smoke's three runs share their programs: the expert run's process also serves the
    breaker drill, and the random arm's, started ahead, its run: two starts, not three."""
    program = PROGRAMS / "persistent_probe.py"
    easy = ("incident/incident-easy-01-cache-crashed.yaml",
            "orders/orders-easy-01-cancel-pending-order.yaml")
    cfg = make_project(tmp_path / "p", tasks=easy, agent=_persistent(program),
                       run={"concurrency": 1})
    # the probe makes one model call per trial and solves nothing: the smoke fails (the 402
    # after 5 calls never comes), but every run gives each trial to a program
    main(["smoke", "--config", str(cfg), "--out", str(tmp_path / "smoke")])
    log = json.loads((tmp_path / "p" / "agent-log" / "pid_log.json").read_text())
    pids: dict[str, set[int]] = {}
    for _task, model, pid in log:
        pids.setdefault(model, set()).add(pid)
    assert len(log) == 6  # 2 tasks in each of the expert, random and breaker runs
    assert {m: len(p) for m, p in pids.items()} == {"mock/expert": 1, "mock/random": 1}
    _assert_the_expert_arm_yields(tmp_path / "p")


def _assert_the_expert_arm_yields(project: Path) -> None:
    """The smoke's expert arm's programs run at a lower CPU priority than gate's (the random
    arm's run, the longest, goes first), the random arm's at gate's; each in a process group of
    its own within gate's session (where a priority counts against gate and the other arm)."""
    priority = json.loads((project / "agent-log" / "priority.json").read_text())
    own = os.nice(0)
    assert {model: p["nice"] for model, p in priority.items()} == {
        "mock/expert": min(own + BACKGROUND, 19), "mock/random": own}
    assert {p["sid"] for p in priority.values()} == {os.getsid(0)}
    assert all(p["own_group"] for p in priority.values())


@pytest.mark.slow  # end to end: not in the fast loop
def test_started_per_trial_the_smokes_expert_programs_yield_too(tmp_path: Path) -> None:
    probe = PROGRAMS / "persistent_probe.py"  # started per trial, it records its start, exits
    cfg = make_project(tmp_path / "p", tasks=("incident/incident-easy-01-cache-crashed.yaml",),
                       agent={"command": [sys.executable, str(probe)], "timeout_s": 60},
                       run={"concurrency": 1})
    main(["smoke", "--config", str(cfg), "--out", str(tmp_path / "smoke")])
    _assert_the_expert_arm_yields(tmp_path / "p")


@pytest.mark.slow  # end to end: not in the fast loop
def test_the_smokes_arms_run_at_once(tmp_path: Path) -> None:
    """The expert arm's run and the random arm's run at the same time: each expert trial waits
    (30 s at most) for a random trial to be recorded, which, run one after the other, would
    come only once the expert run was over."""
    program = {**_persistent(PROGRAMS / "persistent_probe.py"),
               "env": {"PROBE_AWAIT_MODEL": "mock/random"}}
    cfg = make_project(tmp_path / "p", tasks=("incident/incident-easy-01-cache-crashed.yaml",),
                       agent=program, run={"concurrency": 1})
    main(["smoke", "--config", str(cfg), "--out", str(tmp_path / "smoke")])
    awaited = json.loads((tmp_path / "p" / "agent-log" / "awaited.json").read_text())
    assert awaited == {"incident-easy-01-cache-crashed": True}


def _one_task_probe(tmp_path: Path, overrides: dict[str, str] | None = None
                    ) -> tuple[Path, Path]:
    """A one-task project whose agent is the persistent probe; its gate.yaml, and the probe's
    log of the pids it started with."""
    cfg = make_project(tmp_path / "p", tasks=("incident/incident-easy-01-cache-crashed.yaml",),
                       agent=_persistent(PROGRAMS / "persistent_probe.py"), overrides=overrides)
    return cfg, tmp_path / "p" / "agent-log" / "started.json"


def _started(log: Path, count: int) -> list[int]:
    """The pids of the first ``count`` probes to start (60 s at most), once they have."""
    for _ in range(1200):
        pids = json.loads(log.read_text()) if log.exists() else []
        if len(pids) >= count:
            return list(pids)
        time.sleep(0.05)
    raise AssertionError(f"{count} probes did not start while the project loaded")


@pytest.mark.slow  # end to end: not in the fast loop
def test_the_smoke_starts_the_random_arms_program_before_the_project_loads(
        tmp_path: Path) -> None:
    """With one persistent program for every task, gate smoke starts the random arm's process
    (the longest run's) first: the project's loading can wait for it to be up; the expert arm's
    starts after, and the smoke gives the two every trial (no third process)."""
    cfg, started = _one_task_probe(tmp_path)
    seen: list[int] = []

    def load() -> Project:
        seen.extend(_started(started, 1))
        return load_project(cfg)

    smoke_command(cfg, load, tmp_path / "smoke", seed=None)
    assert len(seen) == 1
    pids = json.loads(started.read_text())
    assert len(pids) == 2
    assert pids[0] == seen[0]
    log = json.loads((tmp_path / "p" / "agent-log" / "pid_log.json").read_text())
    assert {pid for _, model, pid in log if model == "mock/random"} == set(seen)
    assert {pid for *_, pid in log} == set(pids)


@pytest.mark.slow  # end to end: not in the fast loop
def test_a_project_that_does_not_load_ends_the_program_started_early(tmp_path: Path) -> None:
    cfg, started = _one_task_probe(tmp_path)
    seen: list[int] = []

    def load() -> Project:
        seen.extend(_started(started, 1))
        raise ConfigError.one("tasks/x.yaml", 3, "broken on purpose")

    with pytest.raises(ConfigError):
        smoke_command(cfg, load, tmp_path / "smoke", seed=None)
    assert json.loads(started.read_text()) == seen  # the expert arm's never started
    with pytest.raises(ProcessLookupError):  # ended and reaped
        os.kill(seen[0], 0)
    assert not (tmp_path / "smoke" / "smoke.json").exists()


@pytest.mark.slow  # end to end: not in the fast loop
def test_with_agent_overrides_the_smoke_starts_programs_with_their_trials(tmp_path: Path) -> None:
    """Which program a task gets is known only once the tasks are loaded: none starts early."""
    cfg, started = _one_task_probe(tmp_path, {"orders": "builtin"})
    before: list[bool] = []

    def load() -> Project:
        before.append(started.exists())
        return load_project(cfg)

    smoke_command(cfg, load, tmp_path / "smoke", seed=None)
    assert before == [False]
    assert len(json.loads(started.read_text())) == 2  # then one per arm, with the first trial


def test_no_process_starts_once_the_run_halted() -> None:
    async def go() -> int:
        pool = ProgramPool(size=2)
        stop = asyncio.Event()
        stop.set()
        try:
            with pytest.raises(HaltError):
                async with pool.lease(ProgramPool.key("arm", ECHO), ECHO, Path.cwd(), {}, stop):
                    pass
            return pool.started
        finally:
            await pool.aclose()

    assert asyncio.run(go()) == 0


def test_a_process_started_ahead_takes_the_first_trial() -> None:
    """``prestart``: the first trial takes that process, which counts as starting until its
    first request (a second trial meanwhile waits rather than starting another)."""
    async def go() -> tuple[int, int, bool, bool]:
        pool = ProgramPool(size=4, max_starting=2)
        key = ProgramPool.key("arm", ECHO)
        await pool.prestart(key, ECHO, Path.cwd(), {})
        try:
            async with pool.lease(key, ECHO, Path.cwd(), {}) as first:
                second = asyncio.create_task(_lease_pid(pool, key))
                for _ in range(20):
                    await asyncio.sleep(0)
                waited = not second.done()
                fresh = first.fresh
                first.started()
                first.keep = True
                pid = first.child.pid
            return pool.started, int(await second == pid), waited, fresh
        finally:
            await pool.aclose()

    assert asyncio.run(go()) == (1, 1, True, True)


class _Broke:
    """A provider whose every call is a 402: the run's circuit breaker."""

    name = "broke"

    async def complete(self, request: object, on_attempt: object) -> NoReturn:
        raise CircuitBreakerError("HTTP 402 payment required")

    async def aclose(self) -> None:
        return None


@pytest.mark.slow  # starts a program: not in the fast loop
def test_a_halting_trial_stops_the_run_before_its_process_frees_a_place() -> None:
    """A trial the halt ends sets the run's stop before its process is ended: a trial waiting
    for that place starts no process (the engine would set it only after the trial)."""
    from endpoint_support import session as trial_session

    from gate.agent.program import run_program_trial

    program = AgentProgram(mode="persistent", timeout_s=60,
                           command=[sys.executable, str(PROGRAMS / "persistent_probe.py")])

    async def go(tmp: Path) -> bool:
        pool, stop = ProgramPool(size=1), asyncio.Event()
        trial, _audit = trial_session("incident-easy-01-cache-crashed", provider=_Broke())
        try:
            with pytest.raises(HaltError):
                await run_program_trial(program, trial.spec, trial.env, _Broke(),
                                        lambda _step, _a: None, root=tmp, stop=stop,
                                        pool=pool, arm="arm")
            return stop.is_set()
        finally:
            await pool.aclose()

    with tempfile.TemporaryDirectory() as tmp:
        assert asyncio.run(go(Path(tmp)))


async def _lease_pid(pool: ProgramPool, key: tuple[str, str]) -> int:
    async with pool.lease(key, ECHO, Path.cwd(), {}) as lease:
        lease.keep = True
        return lease.child.pid


ECHO = AgentProgram(mode="persistent", command=[
    sys.executable, "-c", "import sys\nfor line in sys.stdin: print(line)"])


@pytest.mark.parametrize(("max_starting", "measured", "processes"),
                         [(1, False, 1), (2, False, 1), (1, True, 1), (2, True, 2)])
def test_while_a_process_starts_another_trial_waits_for_it(max_starting: int, measured: bool,
                                                           processes: int) -> None:
    """An arm's first process starts alone; once a start is measured, at most ``max_starting``
    start at once: a second trial meanwhile waits, and takes the first process when it comes
    free (one start instead of two)."""
    async def go() -> tuple[int, int]:
        pool = ProgramPool(size=4, max_starting=max_starting)
        key = ProgramPool.key("arm", ECHO)
        leased, release = asyncio.Event(), asyncio.Event()
        if measured:  # an earlier process of the arm started (and ended)
            async with pool.lease(key, ECHO, Path.cwd(), {}) as earlier:
                earlier.started()
            pool.started = 0

        async def trial(first: bool) -> int:
            async with pool.lease(key, ECHO, Path.cwd(), {}) as lease:
                if first:
                    leased.set()
                    await release.wait()  # still starting: no request has reached gate
                lease.keep = True
                return lease.child.pid

        try:
            first = asyncio.create_task(trial(True))
            await leased.wait()
            second = asyncio.create_task(trial(False))
            for _ in range(20):
                await asyncio.sleep(0)
            assert second.done() == (processes > 1)
            release.set()
            pids = {await first, await second}
            return len(pids), pool.started
        finally:
            await pool.aclose()

    assert asyncio.run(go()) == (processes, processes)


def test_a_trial_starts_its_own_process_when_none_comes_free() -> None:
    """Once a start is measured, a trial waits that long for a busy process, then starts one."""
    async def go() -> int:
        pool = ProgramPool(size=2, max_starting=1)
        key = ProgramPool.key("arm", ECHO)
        leased, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with pool.lease(key, ECHO, Path.cwd(), {}) as lease:
                lease.started()  # its first request: up, and the start measured
                leased.set()
                await release.wait()

        try:
            held = asyncio.create_task(holder())
            await leased.wait()
            async with pool.lease(key, ECHO, Path.cwd(), {}):
                started = pool.started
            release.set()
            await held
            return started
        finally:
            await pool.aclose()

    assert asyncio.run(go()) == 2
