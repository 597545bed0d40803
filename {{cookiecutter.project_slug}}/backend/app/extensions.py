"""Your part of the app: the agent's instructions and tools, widget actions, your routes.

The app reads this module when it is built (`app/agent.py`, `app/main.py`) and when an
action arrives, so adding a tool, an action or a router never means editing the
template's modules. Upgrades from the template leave this file alone, apart from a rare
change to a default below. The example is one story, "what time is it for me?": the
client tool `get_browser_time_zone` asks the page for its zone, the server tool
`current_time` answers with a card, and the card's Refresh button is the action
`time.refresh`. Replace any of it with your own:

- A server tool: a `@function_tool` in `TOOLS`. Its `ctx.context` is chatkit's
  `AgentContext`: `await ctx.context.stream(ProgressUpdateEvent(text=...))` shows
  progress, `await ctx.context.stream_widget(widget, copy_text=...)` shows a widget.
- A client tool (the page runs it): a `@function_tool` in `CLIENT_TOOLS` that sets
  `ctx.context.client_tool_call = ClientToolCall(name=<its own name>, arguments=...)`.
  The run stops there; the page's `onClientTool` answers, and the model continues with
  the answer as the tool's output.
- A widget: a `.widget` template in `app/widgets/` (the JSON of `chatkit.widgets`, as
  a Jinja template) and a small module that builds it, as time_card.py does.
- A server action (a button with `handler: "server"`): an `ActionHandler` in `ACTIONS`,
  keyed by the action's type. It gets the payload (checked against its model: a bad one
  is a 400) and the widget item the button is on, and returns the updated item. Client
  actions (`handler: "client"`, like `time.copy`) never reach the server: the page's
  `widgets.onAction` handles them.

A router here can take what the built-in routes take, from `app.deps`:

    from app.deps import SettingsDep

    router = APIRouter()

    @router.get("/api/about")
    async def about(settings: SettingsDep) -> dict[str, str]:
        return {"name": settings.project_name}

    ROUTERS = [router]
"""

from __future__ import annotations

from typing import Any

from agents import RunContextWrapper, Tool, function_tool
from chatkit.agents import AgentContext, ClientToolCall
from chatkit.types import ProgressUpdateEvent, WidgetItem
from fastapi import APIRouter
from pydantic import BaseModel

from app.actions import ActionHandler
from app.widgets.time_card import ZoneName, read_clock, time_card

INSTRUCTIONS = (
    "You are a helpful assistant in a chat app. Answer concisely. Use the tools when they "
    "help. When the user asks for their own local time, call get_browser_time_zone, then "
    "current_time with the time zone it returns. current_time shows the user a card; set "
    "show_card to false when they want the answer as plain text."
)


@function_tool
async def current_time(
    ctx: RunContextWrapper[AgentContext[Any]], timezone: str, show_card: bool = True
) -> str:
    """Return the current date and time in a time zone, and show it to the user as a card.

    Args:
        timezone: An IANA time zone name, such as "Europe/Paris" or "UTC".
        show_card: Show the user a card with the time (false: the answer is text only).
    """
    await ctx.context.stream(ProgressUpdateEvent(icon="clock", text="Reading the clock..."))
    try:
        reading = read_clock(timezone)
    except ValueError as error:
        return str(error)  # the model reads it and can retry with a real zone
    if show_card:
        await ctx.context.stream_widget(time_card(reading), copy_text=reading.summary)
    return reading.for_model


@function_tool
def get_browser_time_zone(ctx: RunContextWrapper[AgentContext[Any]]) -> str:
    """Ask the user's browser for its IANA time zone (the user's own local zone)."""
    ctx.context.client_tool_call = ClientToolCall(name="get_browser_time_zone", arguments={})
    return "Asked the browser."  # the page's answer replaces this as the tool's output


class RefreshTime(BaseModel):
    timezone: ZoneName


async def refresh_time(payload: RefreshTime, sender: WidgetItem) -> WidgetItem:
    """The card's Refresh button: the same card at the time now."""
    reading = read_clock(payload.timezone)
    return sender.model_copy(update={"widget": time_card(reading), "copy_text": reading.summary})


# The agent's function tools. MCP_SERVER_URL adds an MCP server's tools beside them.
TOOLS: list[Tool] = [current_time]

# Tools the page runs (its onClientTool): the agent stops at each, for the page's answer.
CLIENT_TOOLS: list[Tool] = [get_browser_time_zone]

# Server actions of widget buttons, by action type.
ACTIONS: dict[str, ActionHandler[Any]] = {
    "time.refresh": ActionHandler(RefreshTime, refresh_time),
}

# Served beside /chatkit and /health, with the same middleware (CORS, headers).
ROUTERS: list[APIRouter] = []
