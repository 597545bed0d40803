"""The performance changes the benchmark measured, each with the code it replaced.

Each entry puts the old behaviour back by patching the generated backend's classes in the
server process (`benchmarks.servers.variant`), so one run measures before and after.
`imports` below happen in that process, where the generated backend is importable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Change:
    name: str
    what: str
    undo: Callable[[], None]
    streaming: bool = True  # whether a turn runs the changed code


@dataclass(frozen=True)
class Probe:
    """Not a change: a part of the generated backend taken out, to see what it costs."""

    name: str
    what: str
    apply: Callable[[], None]


def _undo_parse_once() -> None:
    from app.server import ChatServer
    from chatkit.server import ChatKitServer

    # chatkit's own process(): a new TypeAdapter of the whole request union per request.
    ChatServer.process = ChatKitServer.process  # type: ignore[method-assign]


def _undo_shared_history() -> None:
    import app.server

    class Passthrough:
        """What the SDK saw before: the store itself, so it loads its two items again."""

        def __new__(cls, store: Any, *args: Any) -> Any:
            return store

    app.server.LoadedHistory = Passthrough  # type: ignore[misc, assignment]


def _undo_one_query_page() -> None:
    from app.stores import sql
    from app.stores.base import check_limit, check_order
    from chatkit.store import NotFoundError

    async def load_thread_items(
        self: Any, thread_id: str, after: str | None, limit: int, order: str, context: Any
    ) -> Any:
        # As before: the ownership check, the cursor, then the page: 2 queries per page.
        limit, direction = check_limit(limit), check_order(order)
        user_id = context.user_id
        async with self._read() as conn:
            await self._require_thread(conn, thread_id, user_id)
            after_seq = None
            if after is not None:
                after_seq = await self._item_seq(conn, after, thread_id, user_id)
                if after_seq is None:
                    raise NotFoundError(f"Item {after} not found in thread {thread_id}")
            query = sql.items_page_query(thread_id, user_id, after_seq, limit, direction)
            rows = (await conn.execute(query)).all()
        return self._items_page(rows, limit, context)

    sql.SQLStore.load_thread_items = _as_store_method(load_thread_items)  # type: ignore[method-assign]


def _undo_prebuilt_upsert() -> None:
    from app.stores import sql
    from app.stores.base import item_json
    from app.stores.schema import items, threads
    from chatkit.store import NotFoundError
    from sqlalchemy import DateTime, Text, literal, select
    from sqlalchemy.exc import IntegrityError

    async def _upsert_item(self: Any, thread_id: str, item: Any, context: Any) -> None:
        # As before: the INSERT ... SELECT ... ON CONFLICT statement built on every call.
        source = select(
            literal(item.id, Text),
            threads.c.id,
            threads.c.user_id,
            literal(item.type, Text),
            literal(sql._utc(item.created_at), DateTime(timezone=True)),
            literal(item_json(item), Text),
        ).where(threads.c.id == thread_id, threads.c.user_id == context.user_id)
        stmt = self._insert(items).from_select(
            ["id", "thread_id", "user_id", "type", "created_at", "data"], source
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[items.c.id],
            set_={
                "type": stmt.excluded.type,
                "created_at": stmt.excluded.created_at,
                "data": stmt.excluded.data,
            },
            where=(items.c.user_id == stmt.excluded.user_id)
            & (items.c.thread_id == stmt.excluded.thread_id),
        ).returning(items.c.seq)
        try:
            async with self._write() as conn:
                inserted = (await conn.execute(stmt)).first()
        except IntegrityError as exc:
            raise NotFoundError(f"Thread {thread_id} not found") from exc
        if inserted is None:
            raise NotFoundError(f"Item {item.id} not found in thread {thread_id}")

    sql.SQLStore._upsert_item = _upsert_item  # type: ignore[method-assign]


def _undo_unique_id_lookup() -> None:
    from app.stores import sql
    from app.stores.schema import items
    from sqlalchemy import select

    async def _item_seq(conn: Any, item_id: str, thread_id: str, user_id: str) -> Any:
        # As before: id, thread and user in one WHERE clause.
        return await conn.scalar(
            select(items.c.seq).where(
                items.c.id == item_id, items.c.thread_id == thread_id, items.c.user_id == user_id
            )
        )

    sql.SQLStore._item_seq = staticmethod(_item_seq)  # type: ignore[method-assign, assignment]


def _undo_inline_sqlite() -> None:
    from contextlib import asynccontextmanager

    from app.stores import sql
    from app.stores.engine import SQLITE_WRITE_OPTION

    init = sql.SQLStore.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if self._inline is not None:  # as before: every query through aiosqlite's thread
            self._inline.dispose()
        self._inline = self._inline_write = None

    @asynccontextmanager
    async def _write(self: Any) -> Any:
        async with (
            self._lock(),
            self._engine.execution_options(**{SQLITE_WRITE_OPTION: True}).begin() as conn,
        ):
            yield conn

    sql.SQLStore.__init__ = __init__  # type: ignore[method-assign]
    sql.SQLStore._write = _write  # type: ignore[method-assign]


def _undo_conversation_as_is() -> None:
    import app.providers
    from openai import AsyncOpenAI

    # As before: the conversation goes through the openai client's request walk.
    app.providers.ProviderClient = AsyncOpenAI  # type: ignore[misc]


def _undo_frozen_startup_objects() -> None:
    import gc

    # As before: startup's objects stay in every full collection.
    gc.freeze = lambda: None


def _as_store_method(method: Any) -> Any:
    """Wrapped as the store's public methods are now (if they are), so only the change differs."""
    from app.stores import sql

    return getattr(sql, "_store_call", lambda f: f)(method)


CHANGES: dict[str, Change] = {
    change.name: change
    for change in (
        Change(
            "inline-sqlite",
            "SQLite queries run on the event loop through a synchronous engine; aiosqlite "
            "sent every begin, execute, fetch and commit to its thread and back",
            _undo_inline_sqlite,
        ),
        Change(
            "conversation-as-is",
            "`ProviderClient` sends the conversation through `extra_body`; the openai "
            "client walked every history item through a union of some 25 types first",
            _undo_conversation_as_is,
        ),
        Change(
            "frozen-startup-objects",
            "`gc.freeze()` after startup: full collections no longer walk the ~250,000 "
            "objects of imports, schemas and the agent (about 140 ms each)",
            _undo_frozen_startup_objects,
        ),
        Change(
            "parse-once",
            "`ChatServer.process` parses with a request adapter built once per process; "
            "chatkit's own `process()` builds `TypeAdapter(ChatKitReq)` on every request",
            _undo_parse_once,
        ),
        Change(
            "one-query-page",
            "`SQLStore.load_thread_items` without a cursor is one query; the ownership "
            "check runs only when the page is empty (it was a second query every time)",
            _undo_one_query_page,
        ),
        Change(
            "prebuilt-upsert",
            "the item upsert (`INSERT ... SELECT ... ON CONFLICT`, twice a turn) is built "
            "once with bind parameters instead of on every call",
            _undo_prebuilt_upsert,
        ),
        Change(
            "unique-id-lookup",
            "an item is looked up by its unique id alone and its thread and user checked "
            "after (cursor pages, `load_item`, `delete_thread_item`); with all three in "
            "the WHERE clause, PostgreSQL's generic plan scans the thread's items",
            _undo_unique_id_lookup,
            streaming=False,
        ),
        Change(
            "shared-history",
            "`stream_agent_response`'s look at the last 2 items is served from the page "
            "`respond` just loaded (`LoadedHistory`): one store round trip less per turn",
            _undo_shared_history,
        ),
    )
}


def _without_example_tool() -> None:
    import app.agent

    build_agent = app.agent.build_agent

    def without_tools(*args: Any, **kwargs: Any) -> Any:
        agent = build_agent(*args, **kwargs)
        agent.tools = []
        return agent

    app.agent.build_agent = without_tools  # app.main imports it after this


def _unshielded_store_calls() -> None:
    from app.stores import sql

    for name, value in list(vars(sql.SQLStore).items()):
        code = getattr(value, "__code__", None)
        if code is not None and "_store_call" in code.co_qualname:
            setattr(sql.SQLStore, name, value.__wrapped__)


PROBES: dict[str, Probe] = {
    probe.name: probe
    for probe in (
        Probe(
            "no-example-tool",
            "the agent without its example tool `current_time` (its schema goes out with "
            "every model request)",
            _without_example_tool,
        ),
        Probe(
            "unshielded-store",
            "store calls without `_store_call` (each store call runs in a task of its own "
            "so a dropped client cannot cut it off)",
            _unshielded_store_calls,
        ),
    )
}


def undo(names: list[str]) -> None:
    for name in names:
        if name in PROBES:
            PROBES[name].apply()
        else:
            CHANGES[name].undo()
