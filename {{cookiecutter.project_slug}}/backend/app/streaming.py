"""Give every assistant message its own id on every event of its stream.

With Chat Completions models the Agents SDK names every output item
`__fake_id__`, and `chatkit.agents.stream_agent_response` reuses it as the
message id: the second reply then replaces the first, in the widget and in the
store (openai/chatkit-python#36). Rewriting only `item.id` is not enough: the
text deltas (`thread.item.updated`) carry the id as `item_id`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from chatkit.types import (
    AssistantMessageItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemUpdatedEvent,
    ThreadStreamEvent,
)


async def with_own_message_ids(
    events: AsyncIterator[ThreadStreamEvent], new_id: Callable[[], str]
) -> AsyncIterator[ThreadStreamEvent]:
    # Upstream ids repeat across messages, so the map holds only open messages.
    open_messages: dict[str, str] = {}
    async for event in events:
        if isinstance(event, ThreadItemAddedEvent) and isinstance(event.item, AssistantMessageItem):
            own_id = open_messages[event.item.id] = new_id()
            event = ThreadItemAddedEvent(item=event.item.model_copy(update={"id": own_id}))
        elif isinstance(event, ThreadItemDoneEvent) and isinstance(
            event.item, AssistantMessageItem
        ):
            own_id = open_messages.pop(event.item.id, "") or new_id()
            event = ThreadItemDoneEvent(item=event.item.model_copy(update={"id": own_id}))
        elif isinstance(event, ThreadItemUpdatedEvent) and event.item_id in open_messages:
            event = event.model_copy(update={"item_id": open_messages[event.item_id]})
        elif isinstance(event, ThreadItemRemovedEvent) and event.item_id in open_messages:
            event = ThreadItemRemovedEvent(item_id=open_messages.pop(event.item_id))
        yield event


def quiet_orphaned_stream_steps(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An event-loop exception handler: drop one harmless error, pass on the rest.

    stream_agent_response awaits the agent stream's next step in a task of its own. When
    a client hangs up, that step ends with StopAsyncIteration after nobody waits for it
    any more, and asyncio logs "ERROR Task exception was never retrieved" for every
    dropped stream (openai-chatkit 1.6.5). A StopAsyncIteration only ever means that an
    async iterator ended.
    """
    if isinstance(context.get("exception"), StopAsyncIteration):
        return
    loop.default_exception_handler(context)
