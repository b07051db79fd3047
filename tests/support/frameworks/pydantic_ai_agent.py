"""A Pydantic AI program gate runs per trial: ``MCPToolset`` for the tools (optionally
``.prefixed(...)``), ``OpenAIChatModel`` or ``OpenAIResponsesModel`` against gate's endpoint;
structured output through Pydantic AI's output tool (``final_result``)."""

from __future__ import annotations

import asyncio
import os
import sys

from common import CallCounter, Verdict, instruction, options, system_prompt
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider


async def main() -> int:
    opts = options()
    counter = CallCounter()
    provider = OpenAIProvider(openai_client=AsyncOpenAI(http_client=counter.client(),
                                                        max_retries=0))
    alias = os.environ["GATE_MODEL_ALIAS"]
    model = (OpenAIResponsesModel(alias, provider=provider) if opts.api == "responses"
             else OpenAIChatModel(alias, provider=provider))
    toolset = MCPToolset(os.environ["GATE_MCP_URL"])
    tools = toolset.prefixed(opts.prefix.rstrip("_")) if opts.prefix else toolset
    settings = {"parallel_tool_calls": True} if opts.parallel else {}
    agent = Agent(model, instructions=system_prompt(), toolsets=[tools],
                  output_type=Verdict if opts.structured else str,
                  model_settings=settings or None)  # type: ignore[arg-type]
    async with agent:
        result = await agent.run(instruction(opts))
    answer = result.output
    counter.save(answer.model_dump() if isinstance(answer, Verdict) else answer)
    print(answer)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
