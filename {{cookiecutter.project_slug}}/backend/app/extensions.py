"""Your part of the app: the agent's instructions and tools, and your own routes.

The app reads this module when it is built (`app/agent.py`, `app/main.py`), so adding
a tool or a router never means editing the template's modules. Upgrades from the
template leave this file alone, apart from a rare change to a default below.

A router here can take what the built-in routes take, from `app.deps`:

    from app.deps import SettingsDep

    router = APIRouter()

    @router.get("/api/about")
    async def about(settings: SettingsDep) -> dict[str, str]:
        return {"name": settings.project_name}

    ROUTERS = [router]
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agents import Tool, function_tool
from fastapi import APIRouter

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


# The agent's function tools. MCP_SERVER_URL adds an MCP server's tools beside them.
TOOLS: list[Tool] = [current_time]

# Served beside /chatkit and /health, with the same middleware (CORS, headers).
ROUTERS: list[APIRouter] = []
