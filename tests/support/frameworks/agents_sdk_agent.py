"""An OpenAI Agents SDK program gate runs per trial: the SDK's own MCP integration for the
tools, its Responses or Chat Completions model against gate's endpoint, the model id gate's
alias (no "/", which the SDK would read as a provider prefix)."""

from __future__ import annotations

import asyncio
import os
import sys

from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    set_tracing_disabled,
)
from agents.mcp import MCPServerStreamableHttp
from common import CallCounter, Verdict, instruction, options, system_prompt
from openai import AsyncOpenAI


async def main() -> int:
    opts = options()
    set_tracing_disabled(True)  # and OPENAI_AGENTS_DISABLE_TRACING=1 from agent.env
    counter = CallCounter()
    client = AsyncOpenAI(http_client=counter.client(), max_retries=0)
    alias = os.environ["GATE_MODEL_ALIAS"]
    model = (OpenAIResponsesModel(model=alias, openai_client=client) if opts.api == "responses"
             else OpenAIChatCompletionsModel(model=alias, openai_client=client))
    settings = ModelSettings(tool_choice="required" if opts.required else None,
                             parallel_tool_calls=True if opts.parallel else None)
    async with MCPServerStreamableHttp(params={"url": os.environ["GATE_MCP_URL"]},
                                       cache_tools_list=True) as tools:
        agent = Agent(name="gate-agent", instructions=system_prompt(), model=model,
                      mcp_servers=[tools], model_settings=settings,
                      output_type=Verdict if opts.structured else None)
        result = await Runner.run(agent, instruction(opts), max_turns=60)
    answer = result.final_output
    counter.save(answer.model_dump() if isinstance(answer, Verdict) else answer)
    print(answer)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
