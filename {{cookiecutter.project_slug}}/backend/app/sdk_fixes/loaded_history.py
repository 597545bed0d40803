"""Serve ``stream_agent_response``'s first look at the thread from the page just loaded.

Upstream (openai-chatkit 1.6.5): ``stream_agent_response`` starts by loading the
thread's last two items (to resume a workflow), right after ``respond`` loaded the
recent items for the model: a second store round trip per turn for data already in
memory. No upstream issue found.

Cost: about 2.4 ms of server CPU per turn on the SQLite store (20 conversations at once
against an instant local fake provider, with and without this).
"""

from __future__ import annotations

from typing import Any

from chatkit.store import Store
from chatkit.types import Page, ThreadItem

from app.context import RequestContext


class LoadedHistory:
    """The store as ``stream_agent_response`` sees it during one turn.

    Its first ``load_thread_items`` (newest first, no cursor) is served from the items
    ``respond`` loaded, once; everything else goes to the store.
    """

    def __init__(
        self,
        store: Store[RequestContext],
        thread_id: str,
        oldest_first: list[ThreadItem],
        whole_thread: bool,
    ) -> None:
        self._store = store
        self._thread_id = thread_id
        self._newest_first: list[ThreadItem] | None = oldest_first[::-1]
        self._whole_thread = whole_thread

    async def load_thread_items(
        self, thread_id: str, after: str | None, limit: int, order: str, context: RequestContext
    ) -> Page[ThreadItem]:
        newest, self._newest_first = self._newest_first, None  # served once, then the store
        if (
            newest is not None
            and (thread_id, after, order) == (self._thread_id, None, "desc")
            and 0 < limit
            and (limit < len(newest) or self._whole_thread)
        ):
            data, has_more = newest[:limit], len(newest) > limit
            return Page(data=data, has_more=has_more, after=data[-1].id if has_more else None)
        return await self._store.load_thread_items(thread_id, after, limit, order, context)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
