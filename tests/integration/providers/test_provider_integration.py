"""The pieces together: the real mock models behind MockServer, the CLI, the sharded pool."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest
from provider_support import config, provider, request

from gate.errors import ConfigError
from gate.providers.base import Attempt
from gate.providers.factory import build_client, prepare_pricing
from gate.simulate.cli import _faults, register
from gate.simulate.server import MockServer


def test_mock_models_served_over_http(project_dir: Path) -> None:
    from gate.simulate.models import MOCK_PRICES, MockProvider

    backend = MockProvider.from_config(project_dir / "gate.yaml")
    attempts: list[Attempt] = []
    with MockServer(backend, MOCK_PRICES, seed=1) as srv:

        async def go() -> None:
            cfg = config(srv.base_url, pricing="live")
            async with build_client(cfg) as client:
                prov = provider(cfg, client)
                await prepare_pricing(prov, ["mock/expert", "mock/random"])
                resp = await prov.complete(request(), attempts.append)
                assert resp.message["role"] == "assistant"
                assert resp.response_id.startswith("gen-")
                assert resp.cost_usd > 0

        asyncio.run(go())
    assert [a.outcome for a in attempts] == ["ok"]
    assert "cost_divergence" not in attempts[0].extra


def test_cli_registers_and_reads_faults(project_dir: Path) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["mock-server", "--port", "0", "--fault-rate", "0.3",
                              "--latency-ms", "50"])
    assert args.fault_rate == 0.3
    assert args.latency_ms == 50.0
    faults = _faults(str(project_dir / "gate.yaml"), 0.3)
    assert faults is not None
    assert faults.rate == 0.3
    assert "stall" in faults.kinds
    with pytest.raises(ConfigError, match="fault-rate"):
        _faults(str(project_dir / "gate.yaml"), 1.5)
