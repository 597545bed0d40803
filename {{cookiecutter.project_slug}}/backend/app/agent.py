"""The agent, built from `app/extensions.py` (instructions, tools) and the MCP servers."""

from __future__ import annotations

from agents import Agent, Model, ModelSettings, StopAtTools
from agents.mcp import MCPServer, MCPServerStreamableHttp
from chatkit.agents import AgentContext

from app import extensions


def build_mcp_server(url: str, timeout_seconds: float) -> MCPServer:
    """An MCP server whose tools the SDK lists itself.

    Passing MCP tools in `tools=` fails on Chat Completions ("Hosted tools are
    not supported"); `mcp_servers=` works on both API styles.
    """
    return MCPServerStreamableHttp(
        params={"url": url, "timeout": timeout_seconds},
        client_session_timeout_seconds=timeout_seconds,
        cache_tools_list=True,
        name="mcp",
    )


def client_tool_names() -> list[str]:
    """The tools the page runs: the agent stops at each for the page's answer."""
    return [tool.name for tool in extensions.CLIENT_TOOLS]


def build_agent(
    model: Model, mcp_servers: list[MCPServer] | None = None
) -> Agent[AgentContext[object]]:
    # Read at build time, so that an app built after a change to extensions sees it.
    return Agent[AgentContext[object]](
        name="Assistant",
        instructions=extensions.INSTRUCTIONS,
        model=model,
        tools=[*extensions.TOOLS, *extensions.CLIENT_TOOLS],
        # A client tool ends the run: chatkit then stores the pending call and ends the
        # stream, and the page's answer (threads.add_client_tool_output) starts the next.
        tool_use_behavior=StopAtTools(stop_at_tool_names=client_tool_names()),
        mcp_servers=mcp_servers or [],
        # Chat Completions providers report token usage only when asked.
        model_settings=ModelSettings(include_usage=True),
    )
