"""`LoadedHistory` answers `stream_agent_response`'s first look at a thread exactly as the
store would, from the page `respond` loaded, and sends everything else to the store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from chatkit.types import (
    InferenceOptions,
    Page,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)

from app.context import RequestContext
from app.sdk_fixes.loaded_history import LoadedHistory
from app.stores import MemoryStore

ALICE = RequestContext("usr_alice")


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.page_loads = 0

    async def load_thread_items(self, *args: Any, **kwargs: Any) -> Page[ThreadItem]:
        self.page_loads += 1
        return await super().load_thread_items(*args, **kwargs)


async def thread_with(store: MemoryStore, count: int) -> ThreadMetadata:
    thread = ThreadMetadata(id=store.generate_thread_id(ALICE), created_at=datetime.now())
    await store.save_thread(thread, ALICE)
    for number in range(count):
        item = UserMessageItem(
            id=store.generate_item_id("message", thread, ALICE),
            thread_id=thread.id,
            created_at=datetime.now(),
            content=[UserMessageTextContent(text=f"message {number}")],
            attachments=[],
            inference_options=InferenceOptions(),
        )
        await store.add_thread_item(thread.id, item, ALICE)
    return thread


@pytest.mark.parametrize("items", [1, 2, 3, 7])
@pytest.mark.parametrize("history_limit", [1, 2, 3, 50])
@pytest.mark.parametrize("limit", [1, 2, 5])
async def test_first_look_matches_the_store(items: int, history_limit: int, limit: int) -> None:
    store = CountingStore()
    thread = await thread_with(store, items)
    page = await store.load_thread_items(thread.id, None, history_limit, "desc", ALICE)
    history = list(reversed(page.data))  # what ChatServer.recent_items returns
    view = LoadedHistory(store, thread.id, history, len(history) < history_limit)

    expected = await store.load_thread_items(thread.id, None, limit, "desc", ALICE)
    loads = store.page_loads
    served = await view.load_thread_items(thread.id, None, limit, "desc", ALICE)

    assert [item.id for item in served.data] == [item.id for item in expected.data]
    assert (served.has_more, served.after) == (expected.has_more, expected.after)
    answered_from_history = limit < len(history) or len(history) < history_limit
    assert store.page_loads == loads + (0 if answered_from_history else 1)


async def test_only_the_first_look_is_served_and_the_rest_goes_to_the_store() -> None:
    store = CountingStore()
    thread = await thread_with(store, 5)
    history = list(
        reversed((await store.load_thread_items(thread.id, None, 50, "desc", ALICE)).data)
    )
    view = LoadedHistory(store, thread.id, history, whole_thread=True)
    loads = store.page_loads

    await view.load_thread_items(thread.id, None, 2, "desc", ALICE)
    assert store.page_loads == loads
    await view.load_thread_items(thread.id, None, 2, "desc", ALICE)
    assert store.page_loads == loads + 1
    # Anything else is the store's own: ids, other calls.
    assert view.generate_item_id("message", thread, ALICE).startswith("msg_")
    assert (await view.load_thread(thread.id, ALICE)).id == thread.id


async def test_other_questions_go_to_the_store() -> None:
    store = CountingStore()
    thread = await thread_with(store, 5)
    history = list(
        reversed((await store.load_thread_items(thread.id, None, 50, "desc", ALICE)).data)
    )
    calls: list[tuple[str, str | None, int, str]] = [
        (thread.id, None, 2, "asc"),
        (thread.id, history[2].id, 2, "desc"),
    ]
    for args in calls:
        view = LoadedHistory(store, thread.id, history, whole_thread=True)
        loads = store.page_loads
        expected = await store.load_thread_items(*args, ALICE)
        served = await view.load_thread_items(*args, ALICE)
        assert [item.id for item in served.data] == [item.id for item in expected.data]
        assert store.page_loads == loads + 2
