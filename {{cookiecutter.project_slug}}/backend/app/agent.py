"""The agent: its instructions, its tools and its MCP servers."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agents import Agent, Model, function_tool
from agents.mcp import MCPServer, MCPServerStreamableHttp
from chatkit.agents import AgentContext

INSTRUCTIONS = (
    "You are a helpful assistant in a chat app. Answer concisely. Use the tools when they help."
)


@function_tool
def current_time(timezone: str = "UTC") -> str:
    """Return the current date and time.

    Args:
        timezone: An IANA time zone name, such as "Europe/Paris" or "UTC".
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"Unknown time zone {timezone!r}; use an IANA name such as Europe/Paris."
    return datetime.now(zone).isoformat(timespec="seconds")


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


def build_agent(
    model: Model, mcp_servers: list[MCPServer] | None = None
) -> Agent[AgentContext[object]]:
    return Agent[AgentContext[object]](
        name="Assistant",
        instructions=INSTRUCTIONS,
        model=model,
        tools=[current_time],
        mcp_servers=mcp_servers or [],
    )
