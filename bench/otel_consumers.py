"""What Arize Phoenix and MLflow show of gate's OpenTelemetry export, measured on real servers.

Not part of the test suite: it needs both consumers installed in their own virtual
environments, outside the repository (they are large and not gate's dependencies):

    python3 -m venv DIR/phoenix && DIR/phoenix/bin/pip install arize-phoenix
    python3 -m venv DIR/mlflow && DIR/mlflow/bin/pip install mlflow
    .venv/bin/python bench/otel_consumers.py --consumers DIR [--max-rounds 3]

It starts each server on 127.0.0.1 (Phoenix on 6006, MLflow on 5000 with a SQLite store in
DIR/data) unless one already answers there, and stops the ones it started. Then, on the
repository's suite with the simulated models (the demo's regression sweep, copied to a
temporary project):

1. sweep A, exported automatically to Phoenix (project ``gate-<stamp>-a``), then sent to MLflow
   with ``gate export-otel`` (first without the experiment header: the refusal is printed);
2. sweep B reusing A's baseline trials (``--reuse-from``), exported automatically to MLflow,
   then sent to Phoenix (project ``gate-<stamp>-b``) with ``gate export-otel``;
3. a Phoenix model price for ``mock/.*`` at twice gate's simulated price, then sweep C into
   project ``gate-<stamp>-c``: Phoenix's cost against gate's audited cost.

It prints, per backend and run, from the backends' APIs (Phoenix REST and GraphQL; MLflow's
``mlflow.search_traces`` run in the MLflow environment) against the run directories: traces
and spans, span kinds, root spans with input and output, failed trials found by filtering on
the outcome attributes, token totals, cost, and the reused trials.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
GATE = [sys.executable, "-m", "gate"]
PHOENIX = "http://127.0.0.1:6006"
MLFLOW = "http://127.0.0.1:5000"
MOCK_PRICE_X2 = (0.2, 0.4)  # $ per million tokens: twice gate.simulate.models._BASE_PRICE

MLFLOW_QUERY = r"""
import json, sys, collections
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
exp = sys.argv[2]
out = {}
for run_id in sys.argv[3:]:
    traces = mlflow.search_traces(locations=[exp], return_type="list", max_results=5000,
                                  filter_string=f"span.attributes.gate.run.id LIKE '%{run_id}%'")
    mine = [t for t in traces if any(s.parent_id is None and
            s.attributes.get("gate.run.id") == run_id for s in t.data.spans)]
    failed = mlflow.search_traces(locations=[exp], return_type="list", max_results=5000,
        filter_string="span.attributes.gate.trial.success LIKE '%false%'")
    failed_eq = mlflow.search_traces(locations=[exp], return_type="list", max_results=5000,
        filter_string="span.attributes.gate.trial.outcome = 'failure'")
    kinds = collections.Counter(s.span_type for t in mine for s in t.data.spans)
    usage = [t.info.token_usage or {} for t in mine]
    cost_attrs = sum(1 for t in mine for s in t.data.spans
                     if any(k.startswith("mlflow") and "cost" in k for k in s.attributes))
    def is_run(t):
        return any(s.parent_id is None and s.attributes.get("gate.run.id") == run_id
                   for s in t.data.spans)
    out[run_id] = {
        "traces": len(mine), "spans": sum(len(t.data.spans) for t in mine),
        "kinds": dict(kinds),
        "request": sum(1 for t in mine if t.info.request_preview),
        "response": sum(1 for t in mine if t.info.response_preview),
        "input_tokens": sum(u.get("input_tokens", 0) for u in usage),
        "output_tokens": sum(u.get("output_tokens", 0) for u in usage),
        "failed_like": sum(1 for t in failed if is_run(t)),
        "failed_eq": sum(1 for t in failed_eq if is_run(t)),
        "spans_with_mlflow_cost": cost_attrs,
        "trace_ids": sorted(t.info.trace_id for t in mine),
    }
print(json.dumps(out))
"""


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _start(consumers: Path) -> list[subprocess.Popen[bytes]]:
    """Start the servers that do not answer yet; the processes started."""
    data = consumers / "data"
    (data / "phoenix").mkdir(parents=True, exist_ok=True)
    (data / "mlflow").mkdir(parents=True, exist_ok=True)
    started = []
    if not _up(PHOENIX):
        env = {**os.environ, "PHOENIX_WORKING_DIR": str(data / "phoenix"),
               "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": "6006"}
        started.append(subprocess.Popen([str(consumers / "phoenix/bin/phoenix"), "serve"],
                                        env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL))
    if not _up(MLFLOW + "/health"):
        started.append(subprocess.Popen(
            [str(consumers / "mlflow/bin/mlflow"), "server", "--host", "127.0.0.1", "--port",
             "5000", "--workers", "1", "--backend-store-uri",
             f"sqlite:///{data / 'mlflow' / 'mlflow.db'}", "--default-artifact-root",
             str(data / "mlflow" / "artifacts")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 900  # a busy machine takes minutes to import them
    while not (_up(PHOENIX) and _up(MLFLOW + "/health")):
        if time.monotonic() > deadline:
            raise SystemExit("the consumers did not start within 15 minutes")
        time.sleep(5)
    return started


def _gate(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run([*GATE, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, cwd=REPO, check=False)
    return done.returncode, (done.stdout + done.stderr)


def _graphql(query: str) -> Any:
    answer = requests.post(f"{PHOENIX}/graphql", json={"query": query}, timeout=60)
    answer.raise_for_status()
    return answer.json()["data"]


def _phoenix(project: str) -> dict[str, Any]:
    name = json.dumps(project)
    failed = json.dumps("attributes['gate']['trial']['success'] == False")
    flat = json.dumps("attributes['gate.trial.success'] == False")
    data = _graphql(f"""{{ getProjectByName(name: {name}) {{
        traceCount recordCount tokenCountPrompt tokenCountCompletion sessionCount
        failed: traceCount(filterCondition: {failed})
        failedFlat: traceCount(filterCondition: {flat})
        costSummary {{ total {{ cost }} }} }} }}""")["getProjectByName"]
    roots, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1000, "parent_id": "null"}
        if cursor:
            params["cursor"] = cursor
        page = requests.get(f"{PHOENIX}/v1/projects/{project}/spans", params=params,
                            timeout=60).json()
        roots += page["data"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    data["roots_with_input"] = sum(1 for s in roots if s["attributes"].get("input.value"))
    data["roots_with_output"] = sum(1 for s in roots if s["attributes"].get("output.value"))
    data["kinds"] = sorted({s["span_kind"] for s in roots})
    data["trace_ids"] = sorted(s["context"]["trace_id"] for s in roots)
    return data


def _disk(run: Path) -> dict[str, Any]:
    from gate.rundir import RunDir
    from gate.rundir.audit import read_audit

    audit = read_audit(run / "audit.jsonl")
    trials = RunDir(run).trials()
    results = json.loads((run / "results.json").read_text())
    return {
        "run_id": results["run_id"], "trials": len(trials), "attempts": len(audit),
        "tool_calls": sum(len(t.calls or []) for t in trials),
        "failed": sum(1 for t in trials if t.status == "scored" and not t.success),
        "with_final_answer": sum(1 for t in trials if t.ended == "final_answer"),
        "reused": sum(1 for t in trials if t.reused_from),
        "input_tokens": sum(a.tokens_in or 0 for a in audit),
        "output_tokens": sum(a.tokens_out or 0 for a in audit),
        "audited_cost": round(sum(a.cost_computed_usd or 0 for a in audit), 7),
        "results_cost": round(sum(a["cost_usd"] for a in results["arms"].values()), 7),
        "trace_ids": sorted(t.trace_id or "" for t in trials),
        "reused_trace_ids": sorted(t.trace_id or "" for t in trials if t.reused_from),
    }


def _mlflow(consumers: Path, experiment: str, run_ids: list[str]) -> dict[str, Any]:
    done = subprocess.run([str(consumers / "mlflow/bin/python"), "-c", MLFLOW_QUERY, MLFLOW,
                           experiment, *run_ids], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _report(name: str, disk: dict[str, Any], phoenix: dict[str, Any] | None,
            mlflow: dict[str, Any] | None) -> None:
    print(f"\n== run {name} ({disk['run_id']}): {disk['trials']} trials ({disk['reused']} "
          f"reused), {disk['attempts']} provider attempts, {disk['tool_calls']} tool calls, "
          f"{disk['failed']} failed, {disk['with_final_answer']} with a final answer")
    print(f"   audit.jsonl: {disk['input_tokens']} input + {disk['output_tokens']} output "
          f"tokens; audited cost ${disk['audited_cost']} (results.json ${disk['results_cost']})")
    spans = disk["trials"] + disk["attempts"] + disk["tool_calls"]
    if phoenix is not None:
        print(f"   Phoenix: {phoenix['traceCount']} traces, {phoenix['recordCount']} spans "
              f"(expected {spans}), {phoenix['sessionCount']} session(s); roots with input "
              f"{phoenix['roots_with_input']}, with output {phoenix['roots_with_output']}; "
              f"root kinds {phoenix['kinds']}")
        print(f"   Phoenix: tokens {int(phoenix['tokenCountPrompt'])} + "
              f"{int(phoenix['tokenCountCompletion'])}; failed by filter "
              f"attributes['gate']['trial']['success'] == False: {phoenix['failed']} "
              f"(flat key: {phoenix['failedFlat']}); cost "
              f"${phoenix['costSummary']['total']['cost']}")
        print(f"   Phoenix: every trial's trace id present: "
              f"{set(disk['trace_ids']) <= set(phoenix['trace_ids'])}; reused trials present: "
              f"{set(disk['reused_trace_ids']) <= set(phoenix['trace_ids'])}")
    if mlflow is not None:
        ids = {t.removeprefix("tr-") for t in mlflow["trace_ids"]}
        print(f"   MLflow: {mlflow['traces']} traces, {mlflow['spans']} spans (expected "
              f"{spans}), kinds {mlflow['kinds']}; Request {mlflow['request']}, Response "
              f"{mlflow['response']}")
        print(f"   MLflow: tokens {mlflow['input_tokens']} + {mlflow['output_tokens']}; failed "
              f"by span.attributes.gate.trial.success LIKE '%false%': {mlflow['failed_like']} "
              f"(with = 'failure' on the outcome: {mlflow['failed_eq']}); spans with an "
              f"MLflow cost: {mlflow['spans_with_mlflow_cost']}")
        print(f"   MLflow: every trial's trace id present (as tr-<id>): "
              f"{set(disk['trace_ids']) <= ids}; reused trials present: "
              f"{set(disk['reused_trace_ids']) <= ids}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=Path, required=True,
                        help="directory holding the phoenix/ and mlflow/ virtual environments")
    parser.add_argument("--max-rounds", type=int, default=3)
    args = parser.parse_args()
    consumers = args.consumers.resolve()
    started = _start(consumers)
    stamp = time.strftime("%Y%m%d%H%M%S")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return _measure(consumers, Path(tmp), stamp, args.max_rounds)
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=60)


def _measure(consumers: Path, tmp: Path, stamp: str, rounds: int) -> int:
    project = tmp / "project"
    project.mkdir()
    for name in ("gate.yaml", "models.yaml", "prompts", "tools", "tasks", "fixtures"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, project / name)
    experiment = requests.post(f"{MLFLOW}/api/2.0/mlflow/experiments/create",
                               json={"name": f"gate-{stamp}"}, timeout=60).json()["experiment_id"]
    content = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    to_phoenix = {**content, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{PHOENIX}/v1/traces"}
    to_mlflow = {**content, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{MLFLOW}/v1/traces",
                 "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x-mlflow-experiment-id={experiment}"}
    sweep = ["sweep", "--config", str(project / "gate.yaml"), "--candidate", "mock/expert@0.8",
             "--baseline", "mock/expert", "--max-rounds", str(rounds)]
    a, b, c = tmp / "cache" / "a", tmp / "b", tmp / "c"

    def phoenix_project(x: str) -> dict[str, str]:
        return {**to_phoenix, "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={x}"}

    code, out = _gate([*sweep, "--out", str(a)], phoenix_project(f"gate-{stamp}-a"))
    print(f"sweep A -> Phoenix (automatic): exit {code}; {_line(out, 'exported')}")
    no_header = {k: v for k, v in to_mlflow.items() if "HEADERS" not in k}
    code, out = _gate(["export-otel", "--run", str(a)], no_header)
    print(f"export-otel A -> MLflow without x-mlflow-experiment-id: exit {code}; "
          f"{_line(out, 'export-otel')}")
    code, out = _gate(["export-otel", "--run", str(a)], to_mlflow)
    print(f"export-otel A -> MLflow: exit {code}; {_line(out, 'export-otel')}")
    code, out = _gate([*sweep, "--reuse-from", str(a.parent), "--out", str(b)], to_mlflow)
    print(f"sweep B (reusing A) -> MLflow (automatic): exit {code}; {_line(out, 'exported')}")
    code, out = _gate(["export-otel", "--run", str(b)], phoenix_project(f"gate-{stamp}-b"))
    print(f"export-otel B -> Phoenix: exit {code}; {_line(out, 'export-otel')}")
    _price_mock_models(stamp)
    code, out = _gate([*sweep, "--out", str(c)], phoenix_project(f"gate-{stamp}-c"))
    print(f"sweep C -> Phoenix, mock models priced at 2x in Phoenix: exit {code}; "
          f"{_line(out, 'exported')}")
    time.sleep(10)  # both ingest asynchronously
    disks = {name: _disk(run) for name, run in (("A", a), ("B", b), ("C", c))}
    ml = _mlflow(consumers, experiment, [disks["A"]["run_id"], disks["B"]["run_id"]])
    _report("A", disks["A"], _phoenix(f"gate-{stamp}-a"), ml[disks["A"]["run_id"]])
    _report("B", disks["B"], _phoenix(f"gate-{stamp}-b"), ml[disks["B"]["run_id"]])
    _report("C", disks["C"], _phoenix(f"gate-{stamp}-c"), None)
    c_disk = disks["C"]
    expected = (c_disk["input_tokens"] * MOCK_PRICE_X2[0]
                + c_disk["output_tokens"] * MOCK_PRICE_X2[1]) / 1e6
    print(f"   C: Phoenix's own price table applied to the tokens gives ${expected:.7f}; "
          f"gate's audited cost (sent as gen_ai.usage.cost on every chat span) is "
          f"${c_disk['audited_cost']}")
    return 0


def _price_mock_models(stamp: str) -> None:
    """A Phoenix model price for gate's simulated models, twice gate's own."""
    prompt, completion = MOCK_PRICE_X2
    _graphql(f"""mutation {{ createModel(input: {{name: "gate-mock-x2-{stamp}",
        namePattern: "mock/.*", costs: [
          {{tokenType: "input", costPerMillionTokens: {prompt}, kind: PROMPT}},
          {{tokenType: "output", costPerMillionTokens: {completion}, kind: COMPLETION}}]}})
        {{ model {{ id }} }} }}""")


def _line(text: str, start: str) -> str:
    found = [line for line in text.splitlines() if line.startswith(start)]
    return found[-1] if found else f"(no {start!r} line; the output was: {text.strip()!r})"


if __name__ == "__main__":
    sys.exit(main())
