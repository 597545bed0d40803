"""Give every assistant message its own id on every event of its stream.

Upstream (openai-chatkit 1.6.5, openai-agents 0.24.0): with Chat Completions models the
Agents SDK names every output item ``__fake_id__``, and
``chatkit.agents.stream_agent_response`` reuses it as the message id, so the second
reply replaces the first, in the widget and in the store (``save_item`` upserts by id).
Rewriting only ``item.id`` is not enough: the text deltas (``thread.item.updated``)
carry the id as ``item_id``. Issues: https://github.com/openai/chatkit-python/issues/36,
https://github.com/openai/chatkit-js/issues/58,
https://github.com/openai/openai-agents-python/issues/1485.

The same goes for client tool calls: ``stream_agent_response`` names the pending
``ClientToolCallItem`` after the function call's item id, ``__fake_id__`` again, so a
thread's second client tool call overwrites its first, and another thread's cannot be
stored at all (item ids are unique across the store). Each gets its own id too; its
``call_id``, which pairs the call with its output, stays.

Cost: a dict lookup per event; without it every turn after the first loses a reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from chatkit.types import (
    AssistantMessageItem,
    ClientToolCallItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemUpdatedEvent,
    ThreadStreamEvent,
)


async def with_own_message_ids(
    events: AsyncIterator[ThreadStreamEvent],
    new_id: Callable[[], str],
    new_call_id: Callable[[], str] | None = None,
) -> AsyncIterator[ThreadStreamEvent]:
    """``new_id`` names messages; ``new_call_id`` client tool calls (default ``new_id``)."""
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
        elif isinstance(event, ThreadItemDoneEvent) and isinstance(event.item, ClientToolCallItem):
            # Only ever sent done, once: nothing else refers to its upstream id.
            own_id = (new_call_id or new_id)()
            event = ThreadItemDoneEvent(item=event.item.model_copy(update={"id": own_id}))
        elif isinstance(event, ThreadItemUpdatedEvent) and event.item_id in open_messages:
            event = event.model_copy(update={"item_id": open_messages[event.item_id]})
        elif isinstance(event, ThreadItemRemovedEvent) and event.item_id in open_messages:
            event = ThreadItemRemovedEvent(item_id=open_messages.pop(event.item_id))
        yield event
