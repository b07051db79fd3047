"""What the provider says reaches the record: finish_reason, refusal, reasoning, cached tokens,
the live price list's key and its variable prices. Against a loopback server with crafted
responses."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from crafted import Crafted, completion
from provider_support import KEY, MODEL, config, provider, request

from gate.agent.loop import TrialSpec, TrialTrace, run_trial
from gate.cli import main
from gate.config.schema import Price
from gate.engine.results import arm_summary
from gate.environments.base import ToolResult
from gate.errors import ConfigError
from gate.project.load import LoadedTask, load_project
from gate.providers.base import Attempt, ErrorKind, ProviderError
from gate.providers.factory import build_client
from gate.records import ArmSpec, Trial
from gate.rundir.audit import attempts

CHAT = "POST /v1/chat/completions"
MODELS = "GET /v1/models"


class StubEnv:
    """An environment that records the calls it is asked to run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, name: str, args: dict[str, Any]) -> ToolResult:
        self.calls.append((name, args))
        return ToolResult(content="ok")


def _task(project_dir: Path) -> tuple[LoadedTask, dict[str, Any]]:
    project = load_project(project_dir / "gate.yaml")
    lt = project.tasks[0]
    env = lt.task.environment
    return lt, {"tools": project.openai_tools(env), "schemas": project.tool_schemas(env)}


def _trial(project_dir: Path, srv: Crafted, **cfg: Any) -> tuple[TrialTrace, StubEnv,
                                                                  list[Attempt]]:
    lt, tools = _task(project_dir)
    spec = TrialSpec(task=lt, model=MODEL, seed=1, system_prompt="sys", max_tokens=64,
                     temperature=0.0, **tools)
    env = StubEnv()
    attempts: list[Attempt] = []

    async def go() -> TrialTrace:
        c = config(srv.base_url, **cfg)
        async with build_client(c) as client:
            return await run_trial(spec, env, provider(c, client), attempts.append)  # type: ignore[arg-type]

    return asyncio.run(go()), env, attempts


def _call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}


def test_a_tool_call_cut_at_max_tokens_is_a_truncation_not_an_invalid_action(
    project_dir: Path,
) -> None:
    lt, _ = _task(project_dir)
    tool = lt.fixture.reference_trajectory[0].tool
    cut = completion({"content": None, "tool_calls": [_call(tool, '{"service": "chec')]},
                     "length")
    with Crafted({CHAT: [(200, cut)]}) as srv:
        trace, env, attempts = _trial(project_dir, srv)
    assert trace.ended == "truncated"
    assert trace.truncations == 1
    assert dict(trace.invalid) == {}
    assert trace.tool_calls == 0
    assert env.calls == []
    assert [a.finish_reason for a in attempts] == ["length"]


def test_text_cut_at_max_tokens_is_not_a_final_answer(project_dir: Path) -> None:
    cut = completion({"content": "The root cause is the"}, "length")
    with Crafted({CHAT: [(200, cut)]}) as srv:
        trace, _, _ = _trial(project_dir, srv)
    assert trace.ended == "truncated"
    assert trace.truncations == 1


def test_finish_reason_error_is_a_provider_error_of_its_own_kind(project_dir: Path) -> None:
    broken = completion({"content": "partial outp"}, "error")
    fine = completion({"content": "done"}, "stop")
    with Crafted({CHAT: [(200, broken), (200, fine)]}) as srv:
        trace, _, attempts = _trial(project_dir, srv)
    assert [a.outcome for a in attempts] == [ErrorKind.FINISH_ERROR.value, "ok"]
    assert attempts[0].finish_reason == "error"
    assert trace.ended == "final_answer"
    with Crafted({CHAT: [(200, broken)]}) as srv, pytest.raises(ProviderError) as info:
        _trial(project_dir, srv, max_attempts=2)
    assert info.value.kind is ErrorKind.FINISH_ERROR


def test_a_refusal_is_recorded_in_the_trace_and_counted_per_arm(project_dir: Path) -> None:
    refused = completion({"content": None, "refusal": "I can't help with that."}, "stop")
    with Crafted({CHAT: [(200, refused)]}) as srv:
        trace, _, _ = _trial(project_dir, srv)
    assert trace.refusals == ["I can't help with that."]
    head = {"arm": "a", "model": "m", "task": "t", "seed": 1, "ts": "2026-11-23T00:00:00Z",
            "wall_s": 1.0, "status": "scored", "latency_s": 1.0, "trace_id": "0" * 32}
    trials = [Trial.model_validate({**head, "trial_id": "a/t/r1", "round": 1, "success": False,
                                    "reward": 0.0, "refusals": trace.refusals,
                                    "truncations": 0}),
              Trial.model_validate({**head, "trial_id": "a/t/r2", "round": 2, "success": True,
                                    "reward": 1.0, "refusals": [], "truncations": 2})]
    summary = arm_summary(ArmSpec(name="a", model="m", provider="p", prompts_tools="worktree"),
                          trials, [])
    assert summary.refusals == 1
    assert summary.truncations == 2


def test_reasoning_stays_on_the_assistant_turn_sent_back(project_dir: Path) -> None:
    lt, _ = _task(project_dir)
    ref = lt.fixture.reference_trajectory[0]
    details = [{"type": "reasoning.encrypted", "data": "opaque-blob", "id": "r1", "index": 0}]
    first = completion({"content": None, "reasoning": "look at the logs first",
                        "reasoning_details": details,
                        "tool_calls": [_call(ref.tool, json.dumps(ref.args))]}, "tool_calls")
    with Crafted({CHAT: [(200, first), (200, completion({"content": "done"}))]}) as srv:
        trace, env, _ = _trial(project_dir, srv)
        second = srv.bodies(CHAT)[1]
    assert env.calls == [(ref.tool, ref.args)]
    assistant = next(m for m in second["messages"] if m["role"] == "assistant")
    assert assistant["reasoning"] == "look at the logs first"
    assert assistant["reasoning_details"] == details
    assert trace.ended == "final_answer"


def _listing(pricing: dict[str, str]) -> dict[str, Any]:
    return {"data": [{"id": MODEL, "pricing": pricing}]}


def _complete(srv: Crafted) -> tuple[Any, list[Attempt], Any]:
    attempts: list[Attempt] = []

    async def go() -> tuple[Any, Any]:
        c = config(srv.base_url, pricing="live")
        async with build_client(c) as client:
            prov = provider(c, client)
            return await prov.complete(request(), attempts.append), prov

    response, prov = asyncio.run(go())
    return response, attempts, prov


def test_cached_prompt_tokens_are_priced_at_the_cache_read_price() -> None:
    price = Price(prompt=0.000003, completion=0.000015, cache_read=0.0000003)
    expected = 200 * price.prompt + 800 * 0.0000003 + 10 * price.completion
    pricing = {"prompt": "0.000003", "completion": "0.000015", "input_cache_read": "0.0000003"}
    answer = completion({"content": "hi"}, prompt=1000, completion_tokens=10, cached=800,
                        cost=expected)
    with Crafted({MODELS: [(200, _listing(pricing))], CHAT: [(200, answer)]}) as srv:
        response, attempts, prov = _complete(srv)
    assert response.cost_usd == pytest.approx(expected)
    assert response.usage.cached_tokens == 800
    assert attempts[0].cached_tokens == 800
    assert "cost_divergence" not in attempts[0].extra
    assert prov.stats.cost_divergences == 0


def test_without_a_cache_read_price_cached_tokens_cost_the_full_price() -> None:
    pricing = {"prompt": "0.000003", "completion": "0.000015"}
    answer = completion({"content": "hi"}, prompt=1000, completion_tokens=10, cached=800)
    with Crafted({MODELS: [(200, _listing(pricing))], CHAT: [(200, answer)]}) as srv:
        response, _, _ = _complete(srv)
    assert response.cost_usd == pytest.approx(1000 * 0.000003 + 10 * 0.000015)


def test_the_live_price_list_is_fetched_with_the_key() -> None:
    pricing = {"prompt": "0.000001", "completion": "0.000002"}
    with Crafted({MODELS: [(200, _listing(pricing))],
                  CHAT: [(200, completion({"content": "hi"}))]}) as srv:
        _complete(srv)
    listing = next(s for s in srv.seen if s.path == "/v1/models")
    headers = {k.lower(): v for k, v in listing.headers.items()}
    assert headers.get("authorization") == f"Bearer {KEY}"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_on_the_price_list_is_said_plainly(status: int) -> None:
    with Crafted({MODELS: [(status, {"error": {"code": status, "message": "bad key"}})]}) as srv, \
            pytest.raises(ConfigError, match=f"the provider refused the key: HTTP {status}"):
        _complete(srv)


def test_a_variable_price_is_explained_not_taken_for_an_id_mismatch() -> None:
    listing = {"data": [{"id": MODEL, "pricing": {"prompt": "-1", "completion": "-1"}},
                        {"id": MODEL + "-x", "pricing": {"prompt": "0.1", "completion": "0.1"}}]}
    with Crafted({MODELS: [(200, listing)]}) as srv, pytest.raises(ConfigError) as info:
        _complete(srv)
    text = str(info.value)
    assert "variable prompt price" in text
    assert "cannot budget" in text
    assert "ids must match" not in text
    assert srv.bodies(CHAT) == []


def test_truncations_reach_results_and_the_report_says_raise_max_tokens(
    project_dir: Path, tmp_path: Path
) -> None:
    cfg = project_dir / "gate.yaml"
    cfg.write_text(cfg.read_text().replace("max_tokens: 1024", "max_tokens: 12", 1))
    out = tmp_path / "run"
    main(["run", "--config", str(cfg), "--model", "mock/expert", "--rounds", "1",
          "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    arm = results["arms"]["run"]
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert arm["truncations"] == sum(t["truncations"] for t in trials) > 0
    assert arm["metrics"]["invalid_actions"] == 0  # a cut call is not an invalid action
    assert {t["ended"] for t in trials} == {"truncated"}
    lines = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    audit = attempts(lines)  # the outcome of each attempt (started lines folded in)
    assert {a["finish_reason"] for a in audit} == {"length"}
    report = (out / "report.md").read_text()
    assert "raising `run.max_tokens` would help" in report


def test_the_report_says_nothing_of_max_tokens_when_nothing_was_cut(
    project_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    main(["run", "--config", str(project_dir / "gate.yaml"), "--model", "mock/expert",
          "--rounds", "1", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    assert results["arms"]["run"]["truncations"] == 0
    assert "max_tokens" not in (out / "report.md").read_text()



