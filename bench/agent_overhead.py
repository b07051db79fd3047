"""Overhead per trial of running a team's agent program instead of gate's built-in loop.

(a) A trial's own server alone (``serve_trial``, what a trial outside a run pays): start and
    stop of the recording endpoint and the MCP tool server (uvicorn on a loopback port),
    p50/p95 over N starts. Within a run one server serves every trial (gate.agent.serve).
(b) Whole trials on the simulated models (mock/expert, every task of a small suite, concurrency
    1 so trials do not overlap): mean wall time per trial of the built-in loop, of a trivial
    stdlib-only program (plain HTTP, no MCP: the floor of process start + endpoint), and of the
    example agent (official openai SDK with streaming + official mcp client). The difference to
    the built-in loop is the overhead per trial.

    .venv/bin/python bench/agent_overhead.py [--starts 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

from agent_support import EXAMPLE, PROGRAMS, make_project, program  # noqa: E402

from gate.engine.notices import Notices  # noqa: E402
from gate.engine.run import RunSpec, execute_run  # noqa: E402
from gate.project.load import load_project  # noqa: E402
from gate.rundir.jsonl import read_jsonl  # noqa: E402


async def _starts(n: int) -> list[float]:
    from gate.agent.endpoint import TrialSession
    from gate.agent.loop import TrialSpec
    from gate.agent.serve import serve_trial

    project = load_project(REPO / "gate.yaml")
    lt = project.tasks[0]
    env_name = lt.task.environment
    spec = TrialSpec(lt, "mock/expert", 1, project.prompts[env_name],
                     project.openai_tools(env_name), project.tool_schemas(env_name), 256, 0.0)
    times = []
    for _ in range(n):
        env = project.environment(env_name).cls(lt.fixture, 1)
        session = TrialSession(spec, env, _NoProvider(), lambda step, a: None, token="t")
        started = time.perf_counter()
        async with serve_trial(session):
            pass
        times.append(time.perf_counter() - started)
    return times


class _NoProvider:
    name = "none"

    async def complete(self, request: Any, on_attempt: Any) -> Any:
        raise AssertionError("not called")

    async def aclose(self) -> None:
        return None


def _trials(label: str, agent: Any, rounds: int, tmp: Path) -> float:
    overrides: dict[str, Any] = {"run": {"concurrency": 1}}
    cfg = make_project(tmp / label, agent=agent, **overrides)
    out = tmp / f"{label}-run"
    started = time.perf_counter()
    execute_run(load_project(cfg), RunSpec(model="mock/expert", provider=None, rounds=rounds,
                                           out=out, seed=1, notices=Notices(io.StringIO())))
    wall = time.perf_counter() - started
    trials = read_jsonl(out / "trials.jsonl")
    return wall / len(trials)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--starts", type=int, default=20)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    starts = sorted(asyncio.run(_starts(args.starts)))
    print(f"(a) endpoint + MCP server start/stop: p50 {statistics.median(starts) * 1000:.0f} ms, "
          f"p95 {starts[int(0.95 * (len(starts) - 1))] * 1000:.0f} ms over {len(starts)} starts")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        builtin = _trials("builtin", None, args.rounds, tmp)
        trivial = _trials("trivial", program(str(PROGRAMS / "scripted.py"), "loop"),
                          args.rounds, tmp)
        example = _trials("example", program(str(EXAMPLE)), args.rounds, tmp)
    print(f"(b) wall time per trial (mock/expert, concurrency 1): builtin {builtin:.3f} s, "
          f"trivial program {trivial:.3f} s (+{trivial - builtin:.3f} s), example agent "
          f"{example:.3f} s (+{example - builtin:.3f} s)")


if __name__ == "__main__":
    main()
