"""One SQL store for SQLite (aiosqlite) and PostgreSQL (asyncpg), SQLAlchemy 2 Core.

Design notes:
* Every statement filters on ``user_id``; upserts carry an ``ON CONFLICT ... DO UPDATE
  ... WHERE`` guard plus ``RETURNING``, so an id owned by another user or thread is
  never overwritten and the caller gets ``NotFoundError`` instead.
* Pages are keyset on ``seq`` over composite indexes: resolve the cursor id to its seq
  (scoped), then ``seq > x`` / ``seq < x`` ``ORDER BY seq LIMIT n + 1``.
* SQLite allows one writer at a time: writes in this process queue on an asyncio
  lock and begin IMMEDIATE (see engine.py) so they wait instead of failing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatkit.store import NotFoundError
from chatkit.types import Attachment, Page, ThreadItem, ThreadMetadata
from sqlalchemy import ColumnElement, DateTime, Select, Table, Text, delete, literal, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.context import RequestContext
from app.stores.base import (
    ATTACHMENT_ADAPTER,
    ITEM_ADAPTER,
    AppStore,
    Order,
    attachment_json,
    check_limit,
    check_order,
    item_json,
    thread_json,
)
from app.stores.engine import SQLITE_WRITE_OPTION, create_engine, ensure_sqlite_wal
from app.stores.migrate import upgrade_to_head
from app.stores.schema import attachments, items, threads
from app.stores.urls import MEMORY_URL, is_sqlite, normalize_database_url


def _utc(value: datetime) -> datetime:
    # The SDK stamps items with naive local ``datetime.now()``; columns hold UTC.
    # (The JSON ``data`` keeps the original value for an exact round trip.)
    return value.astimezone(UTC)


def keyset_page(
    table: Table,
    scope: list[ColumnElement[bool]],
    after_seq: int | None,
    limit: int,
    order: Order,
) -> Select[tuple[str, str]]:
    """``limit + 1`` rows after ``after_seq`` in ``order``: the extra row means has_more."""
    seq = table.c.seq
    query = select(table.c.id, table.c.data).where(*scope)
    if after_seq is not None:
        query = query.where(seq > after_seq if order == "asc" else seq < after_seq)
    return query.order_by(seq.asc() if order == "asc" else seq.desc()).limit(limit + 1)


def items_page_query(
    thread_id: str, user_id: str, after_seq: int | None, limit: int, order: Order
) -> Select[tuple[str, str]]:
    scope = [items.c.thread_id == thread_id, items.c.user_id == user_id]
    return keyset_page(items, scope, after_seq, limit, order)


def threads_page_query(
    user_id: str, after_seq: int | None, limit: int, order: Order
) -> Select[tuple[str, str]]:
    return keyset_page(threads, [threads.c.user_id == user_id], after_seq, limit, order)


class SQLStore(AppStore):
    """``SQLStore(database_url, **engine_options)``; ``await start()`` before use.

    ``database_url`` is anything ``normalize_database_url`` accepts except memory://;
    ``engine_options`` go to ``create_async_engine`` (pool sizes, ``connect_args``...).
    """

    def __init__(self, database_url: str, **engine_options: Any) -> None:
        url = normalize_database_url(database_url)
        if url == MEMORY_URL:
            raise ValueError("memory:// is served by MemoryStore, not SQLStore")
        self.url = url
        self._engine = create_engine(url, **engine_options)
        self._sqlite = is_sqlite(url)
        self._write_engine = (
            self._engine.execution_options(**{SQLITE_WRITE_OPTION: True})
            if self._sqlite
            else self._engine
        )
        # One writer at a time on SQLite anyway: queue here rather than in busy-wait loops.
        self._write_lock = asyncio.Lock() if self._sqlite else None

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Create or upgrade the schema (Alembic to head). Safe to call on every boot."""
        async with self._lock():
            if self._sqlite:
                database = make_url(self.url).database
                if database:
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                    await ensure_sqlite_wal(database)
            await upgrade_to_head(self._engine)

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    # -- plumbing --------------------------------------------------------------------

    @asynccontextmanager
    async def _lock(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
        else:
            async with self._write_lock:
                yield

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock(), self._write_engine.begin() as conn:
            yield conn

    def _insert(self, table: Table) -> Any:
        # Both dialect inserts offer on_conflict_do_update/excluded with the same signature.
        if self._engine.dialect.name == "postgresql":
            return pg_insert(table)
        return sqlite_insert(table)

    @staticmethod
    async def _require_thread(conn: AsyncConnection, thread_id: str, user_id: str) -> int:
        seq = await conn.scalar(
            select(threads.c.seq).where(threads.c.id == thread_id, threads.c.user_id == user_id)
        )
        if seq is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        return int(seq)

    # -- threads ---------------------------------------------------------------------

    async def load_thread(self, thread_id: str, context: RequestContext) -> ThreadMetadata:
        async with self._engine.connect() as conn:
            data = await conn.scalar(
                select(threads.c.data).where(
                    threads.c.id == thread_id, threads.c.user_id == context.user_id
                )
            )
        if data is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        return ThreadMetadata.model_validate_json(data)

    async def save_thread(self, thread: ThreadMetadata, context: RequestContext) -> None:
        stmt = self._insert(threads).values(
            id=thread.id,
            user_id=context.user_id,
            title=thread.title,
            created_at=_utc(thread.created_at),
            data=thread_json(thread),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[threads.c.id],
            set_={
                "title": stmt.excluded.title,
                "created_at": stmt.excluded.created_at,
                "data": stmt.excluded.data,
            },
            where=threads.c.user_id == stmt.excluded.user_id,
        ).returning(threads.c.seq)
        async with self._write() as conn:
            if (await conn.execute(stmt)).first() is None:
                raise NotFoundError(f"Thread {thread.id} not found")

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: RequestContext
    ) -> Page[ThreadMetadata]:
        limit, direction = check_limit(limit), check_order(order)
        async with self._engine.connect() as conn:
            after_seq = None
            if after is not None:
                after_seq = await self._require_thread(conn, after, context.user_id)
            query = threads_page_query(context.user_id, after_seq, limit, direction)
            rows = (await conn.execute(query)).all()
        data = [ThreadMetadata.model_validate_json(row.data) for row in rows[:limit]]
        return Page(data=data, has_more=len(rows) > limit, after=data[-1].id if data else None)

    async def delete_thread(self, thread_id: str, context: RequestContext) -> None:
        async with self._write() as conn:
            # Items go explicitly too, so nothing depends on PRAGMA foreign_keys alone.
            await conn.execute(
                delete(items).where(
                    items.c.thread_id == thread_id, items.c.user_id == context.user_id
                )
            )
            deleted = await conn.execute(
                delete(threads)
                .where(threads.c.id == thread_id, threads.c.user_id == context.user_id)
                .returning(threads.c.seq)
            )
            if deleted.first() is None:
                raise NotFoundError(f"Thread {thread_id} not found")  # rolls back

    # -- items -----------------------------------------------------------------------

    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: RequestContext,
    ) -> Page[ThreadItem]:
        limit, direction = check_limit(limit), check_order(order)
        user_id = context.user_id
        async with self._engine.connect() as conn:
            await self._require_thread(conn, thread_id, user_id)
            after_seq = None
            if after is not None:
                after_seq = await conn.scalar(
                    select(items.c.seq).where(
                        items.c.id == after,
                        items.c.thread_id == thread_id,
                        items.c.user_id == user_id,
                    )
                )
                if after_seq is None:
                    raise NotFoundError(f"Item {after} not found in thread {thread_id}")
            query = items_page_query(thread_id, user_id, after_seq, limit, direction)
            rows = (await conn.execute(query)).all()
        data = [ITEM_ADAPTER.validate_json(row.data) for row in rows[:limit]]
        return Page(data=data, has_more=len(rows) > limit, after=data[-1].id if data else None)

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: RequestContext
    ) -> None:
        # The SDK can add the same item twice, so this is the same upsert as save_item.
        await self._upsert_item(thread_id, item, context)

    async def save_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        await self._upsert_item(thread_id, item, context)

    async def _upsert_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        # INSERT ... SELECT from the caller's own thread row: inserts nothing when the
        # thread is not theirs, and the WHERE guard refuses to take over an item id that
        # lives in another thread. Either way RETURNING is empty -> NotFoundError.
        source = select(
            literal(item.id, Text),
            threads.c.id,
            threads.c.user_id,
            literal(item.type, Text),
            literal(_utc(item.created_at), DateTime(timezone=True)),
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
            # Postgres: the thread was deleted between our SELECT and the FK check.
            raise NotFoundError(f"Thread {thread_id} not found") from exc
        if inserted is None:
            raise NotFoundError(f"Item {item.id} not found in thread {thread_id}")

    async def load_item(self, thread_id: str, item_id: str, context: RequestContext) -> ThreadItem:
        async with self._engine.connect() as conn:
            data = await conn.scalar(
                select(items.c.data).where(
                    items.c.id == item_id,
                    items.c.thread_id == thread_id,
                    items.c.user_id == context.user_id,
                )
            )
        if data is None:
            raise NotFoundError(f"Item {item_id} not found in thread {thread_id}")
        return ITEM_ADAPTER.validate_json(data)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: RequestContext
    ) -> None:
        async with self._write() as conn:
            await self._require_thread(conn, thread_id, context.user_id)
            # A missing item in an owned thread is a no-op: the SDK emits removals for
            # items it streamed but never persisted (guardrail tripwires).
            await conn.execute(
                delete(items).where(
                    items.c.id == item_id,
                    items.c.thread_id == thread_id,
                    items.c.user_id == context.user_id,
                )
            )

    # -- attachments -----------------------------------------------------------------

    async def save_attachment(self, attachment: Attachment, context: RequestContext) -> None:
        stmt = self._insert(attachments).values(
            id=attachment.id, user_id=context.user_id, data=attachment_json(attachment)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[attachments.c.id],
            set_={"data": stmt.excluded.data},
            where=attachments.c.user_id == stmt.excluded.user_id,
        ).returning(attachments.c.id)
        async with self._write() as conn:
            if (await conn.execute(stmt)).first() is None:
                raise NotFoundError(f"Attachment {attachment.id} not found")

    async def load_attachment(self, attachment_id: str, context: RequestContext) -> Attachment:
        async with self._engine.connect() as conn:
            data = await conn.scalar(
                select(attachments.c.data).where(
                    attachments.c.id == attachment_id,
                    attachments.c.user_id == context.user_id,
                )
            )
        if data is None:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        return ATTACHMENT_ADAPTER.validate_json(data)

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        async with self._write() as conn:
            deleted = await conn.execute(
                delete(attachments)
                .where(
                    attachments.c.id == attachment_id,
                    attachments.c.user_id == context.user_id,
                )
                .returning(attachments.c.id)
            )
            if deleted.first() is None:
                raise NotFoundError(f"Attachment {attachment_id} not found")
