"""A LangGraph program gate runs per trial: ``langchain-mcp-adapters`` for the tools (optionally
prefixed with the server's name), ``ChatOpenAI`` (Chat Completions or ``use_responses_api``)
against gate's endpoint, LangGraph's prebuilt ReAct agent for the loop."""

from __future__ import annotations

import asyncio
import os
import sys

from common import CallCounter, Verdict, instruction, options, system_prompt
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent


async def main() -> int:
    opts = options()
    counter = CallCounter()
    server = opts.prefix.rstrip("_") or "gate"
    mcp = MultiServerMCPClient({server: {"url": os.environ["GATE_MCP_URL"],
                                         "transport": "streamable_http"}},
                               tool_name_prefix=bool(opts.prefix))
    tools = await mcp.get_tools()
    llm = ChatOpenAI(model=os.environ["GATE_MODEL_ALIAS"], http_async_client=counter.client(),
                     max_retries=0, use_responses_api=opts.api == "responses")
    if opts.parallel:
        llm = llm.bind_tools(tools, parallel_tool_calls=True)  # type: ignore[assignment]
    if opts.required:
        llm = llm.bind_tools(tools, tool_choice="required")  # type: ignore[assignment]
    agent = create_react_agent(llm, tools, prompt=system_prompt(),
                               response_format=Verdict if opts.structured else None)
    state = await agent.ainvoke({"messages": [("user", instruction(opts))]},
                                {"recursion_limit": 120})
    answer = state.get("structured_response") or state["messages"][-1].content
    counter.save(answer.model_dump() if isinstance(answer, Verdict) else answer)
    print(answer)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
