"""Each workaround, and whether the upstream bug it works around is still there.

When an `upstream_bug` test fails after upgrading openai-chatkit or openai-agents,
the bug was fixed upstream: read the linked issue, then consider removing the
workaround (and this test) rather than keeping dead code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from agents import Agent, OpenAIChatCompletionsModel, Runner
from agents.exceptions import UserError
from agents.models.chatcmpl_converter import Converter
from chatkit.agents import AgentContext, simple_to_agent_input, stream_agent_response
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)
from openai import AsyncOpenAI

from app.context import RequestContext
from app.history import HistoryConverter
from app.stores.memory import MemoryStore
from app.streaming import with_own_message_ids
from tests.fake_provider import FakeProvider


def conversation() -> list[Any]:
    now = datetime.now()
    return [
        UserMessageItem(
            id="msg_1",
            thread_id="thr_1",
            created_at=now,
            inference_options={},
            content=[UserMessageTextContent(text="hi")],
        ),
        AssistantMessageItem(
            id="msg_2",
            thread_id="thr_1",
            created_at=now,
            content=[AssistantMessageContent(text="hello there")],
        ),
        UserMessageItem(
            id="msg_3",
            thread_id="thr_1",
            created_at=now,
            inference_options={},
            content=[UserMessageTextContent(text="what can you do?")],
        ),
    ]


async def test_upstream_bug_default_converter_breaks_chat_completions() -> None:
    """openai-chatkit 1.6.5 + openai-agents 0.24.0: see app/history.py."""
    history = await simple_to_agent_input(conversation())
    with pytest.raises(UserError, match="Unknown content"):
        Converter.items_to_messages(history)


async def test_history_converter_works_on_both_api_styles() -> None:
    history = await HistoryConverter().to_agent_input(conversation())
    messages = Converter.items_to_messages(history)  # Chat Completions accepts it
    assert [(m["role"], m["content"]) for m in messages][1] == ("assistant", "hello there")
    assert history[1] == {"role": "assistant", "content": "hello there"}  # an easy input message


async def _chat_completions_events(fake: FakeProvider, store: MemoryStore) -> list[Any]:
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
    agent = Agent(name="a", model=OpenAIChatCompletionsModel(model="m", openai_client=client))
    context = RequestContext(user_id="usr_1")
    thread = ThreadMetadata(id="thr_1", created_at=datetime.now())
    await store.save_thread(thread, context)
    agent_context = AgentContext[RequestContext](
        thread=thread, store=store, request_context=context
    )
    result = Runner.run_streamed(agent, "hi", context=agent_context)
    events = [event async for event in stream_agent_response(agent_context, result)]
    await client.close()
    return events


async def test_upstream_bug_chat_completions_messages_share_a_fake_id(fake: FakeProvider) -> None:
    """openai/chatkit-python#36, openai/openai-agents-python#1485: see app/streaming.py."""
    events = await _chat_completions_events(fake, MemoryStore())
    added = [e.item.id for e in events if isinstance(e, ThreadItemAddedEvent)]
    deltas = {e.item_id for e in events if isinstance(e, ThreadItemUpdatedEvent)}
    assert added == ["__fake_id__"] and deltas == {"__fake_id__"}


async def test_own_ids_on_every_event_of_every_message(fake: FakeProvider) -> None:
    store = MemoryStore()
    upstream = await _chat_completions_events(fake, store)
    # Two messages in a row with the same upstream id, as a tool-using run produces.
    doubled = upstream + upstream

    async def replay() -> Any:
        for event in doubled:
            yield event

    ids = iter(["msg_a", "msg_b"])
    events = [event async for event in with_own_message_ids(replay(), lambda: next(ids))]
    by_type: dict[type, list[str]] = {}
    for event in events:
        key = (
            event.item.id
            if isinstance(event, ThreadItemAddedEvent | ThreadItemDoneEvent)
            else getattr(event, "item_id", None)
        )
        if key is not None:
            by_type.setdefault(type(event), []).append(key)
    assert by_type[ThreadItemAddedEvent] == ["msg_a", "msg_b"]
    assert by_type[ThreadItemDoneEvent] == ["msg_a", "msg_b"]
    half = len(by_type[ThreadItemUpdatedEvent]) // 2
    assert set(by_type[ThreadItemUpdatedEvent][:half]) == {"msg_a"}
    assert set(by_type[ThreadItemUpdatedEvent][half:]) == {"msg_b"}
