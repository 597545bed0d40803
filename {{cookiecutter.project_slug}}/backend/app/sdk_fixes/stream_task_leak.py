"""Let ``stream_agent_response``'s queue reader finish when a stream ends early.

Upstream (openai-chatkit 1.6.5): ``stream_agent_response`` reads the agent context's
event queue in a task of its own. When the stream ends before the run does (a client
that hangs up, a provider error), nothing completes the queue and that task waits
forever: one leaked task per such turn. No upstream issue found.

Cost: one inert event per turn; without it, a task (and the turn's objects it holds)
for every dropped stream, for the life of the process.
"""

from __future__ import annotations

from typing import Any

from chatkit.agents import AgentContext
from chatkit.types import ProgressUpdateEvent


async def release_queue_reader(agent_context: AgentContext[Any]) -> None:
    """Run once the turn's stream is over: an event nobody reads ends the waiting task."""
    await agent_context.stream(ProgressUpdateEvent(text=""))
