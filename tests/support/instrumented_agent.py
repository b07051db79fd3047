"""A production agent as a team would write it, run as its own program by the traffic tests:
the official ``openai`` SDK, instrumented by OpenTelemetry's ``opentelemetry-instrumentation-
openai-v2`` (latest GenAI conventions, message content captured on spans), one trace per
session, exported as OTLP/JSON lines in the Collector file exporter's format (the SDK's spans
encoded by ``opentelemetry-exporter-otlp-proto-common``, ids in hex as OTLP/JSON wants).

Its tools are a gate project's built-in environment (the "production system"); its model is
whatever ``--base-url`` serves (``gate mock-server`` in the tests).

    python instrumented_agent.py --base-url URL --project DIR --out traces.jsonl [--model M]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")

import openai
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otlp_file import OtlpJsonFileExporter

from gate.project.load import load_project


def run_session(client: openai.OpenAI, model: str, world: Any, system: str, instruction: str,
                tools: list[dict[str, Any]], max_steps: int) -> None:
    messages: list[Any] = [{"role": "system", "content": system},
                           {"role": "user", "content": instruction}]
    for _ in range(max_steps):
        reply = client.chat.completions.create(model=model, messages=messages, tools=tools)
        message = reply.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            return
        for call in message.tool_calls:
            result = world.call(call.function.name, json.loads(call.function.arguments))
            payload = {"error": result.error} if result.error else result.content
            messages.append({"role": "tool", "tool_call_id": call.id,
                             "content": json.dumps(payload)})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--project", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--model", default="mock/expert")
    ap.add_argument("--environment", default="orders")
    args = ap.parse_args()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OtlpJsonFileExporter(args.out)))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    tracer = provider.get_tracer("support-desk")
    project = load_project(args.project / "gate.yaml")
    client = openai.OpenAI(base_url=args.base_url, api_key="sk-none", max_retries=0)
    env = project.environment(args.environment)
    for lt in project.tasks:
        if lt.task.environment != args.environment:
            continue
        world = env.cls(lt.fixture, 0)
        with tracer.start_as_current_span(f"invoke_agent {lt.task.id}"):
            run_session(client, args.model, world, project.prompts[args.environment],
                        lt.task.instruction, project.openai_tools(args.environment),
                        lt.task.step_limit)
    provider.shutdown()


if __name__ == "__main__":
    main()
