"""``gate mock-server``: serve the simulated models over loopback HTTP, with fault injection."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from gate.cliargs import CONFIG, non_negative_int
from gate.config.schema import FaultConfig, GateConfig
from gate.config.yamlio import load_yaml, model_from_doc
from gate.errors import ConfigError


def register(sub: Any) -> None:
    """Add the ``mock-server`` command to the gate's subparsers."""
    parser = sub.add_parser(
        "mock-server", parents=[CONFIG],
        help="serve the simulated models as an OpenAI-compatible HTTP server on 127.0.0.1",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.add_argument("--seed", type=non_negative_int, default=1234,
                        help="seed of the fault draws")
    parser.add_argument("--fault-rate", type=float, default=None,
                        help="share of completion calls that get a fault (overrides gate.yaml)")
    parser.add_argument("--fault-log", default=None, help="JSONL log of requests and faults")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated latency")
    parser.add_argument("--stall-s", type=float, default=30.0, help="duration of a stall fault")
    parser.set_defaults(func=run_mock_server)


def _faults(config_path: str, rate: float | None) -> FaultConfig | None:
    """The mock provider's faults from gate.yaml, with ``--fault-rate`` applied on top."""
    config = model_from_doc(GateConfig, load_yaml(Path(config_path)))
    faults = next(
        (p.faults for p in config.providers.values() if p.type == "mock" and p.faults), None
    )
    if rate is None:
        return faults
    if not 0.0 <= rate <= 1.0:
        raise ConfigError.one("--fault-rate", None, f"must be within [0, 1], got {rate}")
    return (faults or FaultConfig()).model_copy(update={"rate": rate})


def run_mock_server(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    from gate.simulate.models import MOCK_PRICES, MockProvider
    from gate.simulate.server import MockServer, ServerOptions

    faults = _faults(args.config, args.fault_rate)
    backend = MockProvider.from_config(args.config)
    options = ServerOptions(latency_s=args.latency_ms / 1000.0, stall_s=args.stall_s)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with MockServer(backend, MOCK_PRICES, faults, args.seed, args.fault_log,
                    port=args.port, options=options) as server:
        print(f"gate mock-server: serving {server.base_url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        faults_text = ", ".join(f"{kind} {n}" for kind, n in server.fault_counts().items())
        print(f"gate mock-server: {len(server.requests)} completion requests, faults: "
              f"{faults_text or 'none'}", file=sys.stderr)
    return 0
