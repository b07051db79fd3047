"""CPU per model call: gate's provider path against inspect_ai's OpenAI-compatible provider.

Both clients send the same ``N`` chat calls (``--concurrency`` at a time) to one ``gate
mock-server`` (this process, EchoBackend, zero latency), each in its own child process that
measures its own CPU time (``time.process_time``) around the calls, after a warm-up. Prints both
and the ratio gate / inspect_ai (goal <= 0.1x). Two comparisons:

- ``generate`` (default): the bare provider paths, inspect_ai's ``model.generate`` against gate's
  ``OpenAICompatProvider.complete``.
- ``--harness``: each as it runs in an evaluation: inspect_ai's ``eval`` of a one-turn task
  (samples, transcript, log file) against gate's provider path writing the engine's records
  (every attempt to audit.jsonl, every call as a trial to trials.jsonl, durable before it counts).

``--path httpx`` sends gate's calls through httpx's interface instead of the short path: a
no-op httpx event hook on the run's client makes them go through ``httpx.AsyncClient.send`` and
``httpx-aiohttp``'s transport over the same aiohttp session (what the short path saves).

inspect_ai is never a dependency of gate: it is installed by this script into its own virtual
environment, ``bench/.venv-inspect`` (``pip install inspect_ai openai``, from PyPI), and runs
there; gate's side runs with this interpreter.

    .venv/bin/python bench/inspect_cpu.py [--calls 500] [--concurrency 8] [--path httpx]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

from gate.config.schema import Price
from gate.providers.testing import EchoBackend
from gate.simulate.server import MockServer

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-inspect"
MODEL = "mock/expert"
PRICES = {MODEL: Price(prompt=0.000001, completion=0.000002)}

INSPECT_SIDE = textwrap.dedent("""
    import asyncio, json, sys, time
    from inspect_ai.model import ChatMessageUser, GenerateConfig, get_model

    async def main(base_url, calls, concurrency):
        config = GenerateConfig(max_connections=concurrency, max_retries=1, max_tokens=64)
        model = get_model("openai-api/gate/" + MODEL, base_url=base_url, api_key="sk-bench",
                          config=config)
        for i in range(20):
            await model.generate([ChatMessageUser(content=f"warm {i}")])
        gate = asyncio.Semaphore(concurrency)

        async def one(i):
            async with gate:
                out = await model.generate([ChatMessageUser(content=f"question {i}")])
                assert out.completion.startswith("echo:"), out.completion

        start = time.process_time()
        await asyncio.gather(*(one(i) for i in range(calls)))
        return time.process_time() - start

    def harness(base_url, calls, concurrency):
        import tempfile
        from inspect_ai import Task, eval
        from inspect_ai.dataset import Sample
        from inspect_ai.solver import generate

        samples = [Sample(input=f"question {i}", target="") for i in range(calls)]
        with tempfile.TemporaryDirectory() as logs:
            start = time.process_time()
            eval(Task(dataset=samples, solver=generate()), model="openai-api/gate/" + MODEL,
                 model_base_url=base_url, max_connections=concurrency, max_samples=concurrency,
                 log_dir=logs, display="none", max_retries=1)
            return time.process_time() - start

    MODEL = sys.argv[4]
    if sys.argv[5] == "harness":
        import os
        os.environ["GATE_API_KEY"] = "sk-bench"
        cpu = harness(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    else:
        cpu = asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    print(json.dumps({"cpu_s": cpu}))
""")

GATE_SIDE = textwrap.dedent("""
    import asyncio, json, sys, tempfile, time
    from pathlib import Path
    from gate.config.schema import ProviderConfig
    from gate.rundir.jsonl import JsonlWriter
    from gate.providers.base import ChatRequest
    from gate.providers.budget import Budget
    from gate.providers.factory import build_client, build_provider, prepare_pricing
    from gate.records import AuditAttempt, Trial

    sys.path.insert(0, sys.argv[6])  # bench/: the records the engine writes, as overhead.py
    from overhead import audit_record, trial_record

    async def main(base_url, calls, concurrency, records):
        cfg = ProviderConfig(type="openai", base_url=base_url, api_key_env="K", pricing="live",
                             concurrency=concurrency, timeout_s=30)
        tmp = tempfile.TemporaryDirectory()
        audit = JsonlWriter(Path(tmp.name) / "audit.jsonl", AuditAttempt)
        trials = JsonlWriter(Path(tmp.name) / "trials.jsonl", Trial)

        def on_attempt(a):  # the audit line the engine writes for every attempt
            attempts.append(a)
            if records:
                audit.append(audit_record(a, MODEL))

        async with build_client(cfg) as client:
            if sys.argv[7] == "httpx":  # an event hook: gate's calls go through httpx's send

                async def seen(request):
                    pass

                client.event_hooks = {"request": [seen], "response": []}
            prov = build_provider("bench", cfg, client, budget=Budget(1e6),
                                  notice=lambda _: None, env={"K": "sk-bench"})
            await prepare_pricing(prov, [MODEL])
            attempts = []

            def ask(text):
                messages = [{"role": "user", "content": text}]
                return prov.complete(ChatRequest(MODEL, messages, [], 1, 64), on_attempt)

            for i in range(20):
                await ask(f"warm {i}")
            gate = asyncio.Semaphore(concurrency)

            async def one(i):
                async with gate:
                    out = await ask(f"question {i}")
                    assert out.message["content"].startswith("echo:")
                    if records:  # the audit durable, then the trial (as the engine does)
                        await trials.commit_after(audit, trial_record(i, out.response_id, MODEL))

            start = time.process_time()
            await asyncio.gather(*(one(i) for i in range(calls)))
            audit.close()
            trials.close()
            cpu = time.process_time() - start
        tmp.cleanup()
        return cpu

    MODEL = sys.argv[4]
    records = sys.argv[5] == "harness"
    cpu = asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), records))
    print(json.dumps({"cpu_s": cpu}))
""")


def inspect_python() -> Path:
    """The interpreter of ``bench/.venv-inspect``, created and filled on first use."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import inspect_ai, openai"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing inspect_ai into {VENV} (once) ...", file=sys.stderr)
    venv.create(VENV, with_pip=True)
    install = [str(python), "-m", "pip", "install", "--quiet", "inspect_ai", "openai"]
    if subprocess.run(install).returncode != 0:
        raise SystemExit("cannot install inspect_ai from PyPI (offline?): no comparison")
    return python


def measure(
    python: Path, script: str, base_url: str, calls: int, concurrency: int, mode: str,
    path: str = "open",
) -> float:
    env = {**os.environ, "INSPECT_LOG_LEVEL": "warning", "INSPECT_DISPLAY": "none"}
    out = subprocess.run(
        [str(python), "-c", script, base_url, str(calls), str(concurrency), MODEL, mode,
         str(HERE), path],
        capture_output=True, text=True, env=env, check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{python.name} side failed:\n{out.stderr[-2000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["cpu_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--harness", action="store_true",
                        help="inspect_ai's eval against gate's path with its records")
    parser.add_argument("--path", choices=["open", "httpx"], default="open",
                        help="gate's calls: aiohttp directly (open) or httpx's interface")
    args = parser.parse_args(argv)
    mode = "harness" if args.harness else "generate"
    python = inspect_python()
    probe = [str(python), "-c", "import inspect_ai; print(inspect_ai.__version__)"]
    version = subprocess.run(probe, capture_output=True, text=True).stdout.strip()
    with MockServer(EchoBackend(), PRICES) as srv:
        gate_cpu = measure(Path(sys.executable), GATE_SIDE, srv.base_url, args.calls,
                           args.concurrency, mode, args.path)
        inspect_cpu = measure(python, INSPECT_SIDE, srv.base_url, args.calls,
                              args.concurrency, mode)
    per_gate = gate_cpu / args.calls * 1000
    per_inspect = inspect_cpu / args.calls * 1000
    ratio = gate_cpu / inspect_cpu
    print(f"{args.calls} calls, concurrency {args.concurrency}, mode {mode}, "
          "against gate mock-server:")
    via = "aiohttp directly" if args.path == "open" else "httpx's interface, httpx-aiohttp"
    print(f"  gate path: {via}")
    print(f"  gate:                 {gate_cpu:.2f} s CPU = {per_gate:.3f} ms per call")
    print(f"  inspect_ai {version}: {inspect_cpu:.2f} s CPU = {per_inspect:.3f} ms per call")
    print(f"  ratio gate / inspect_ai: {ratio:.3f}x  (goal <= 0.1x: "
          f"{'met' if ratio <= 0.1 else 'NOT met'})")
    print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
