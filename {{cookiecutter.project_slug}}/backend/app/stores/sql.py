"""One SQL store for SQLite (sqlite3) and PostgreSQL (asyncpg), SQLAlchemy 2 Core.

Design notes:
* Every statement filters on ``user_id``; upserts carry an ``ON CONFLICT ... DO UPDATE
  ... WHERE`` guard plus ``RETURNING``, so an id owned by another user or thread is
  never overwritten and the caller gets ``NotFoundError`` instead.
* Pages are keyset on ``seq`` over composite indexes: resolve the cursor id to its seq
  (scoped), then ``seq > x`` / ``seq < x`` ``ORDER BY seq LIMIT n + 1``.
* SQLite allows one writer at a time: writes in this process queue on an asyncio
  lock and begin IMMEDIATE (see engine.py) so they wait instead of failing.
* SQLite queries run on the event loop through a synchronous engine
  (``app/sdk_fixes/inline_sqlite.py``): microseconds each, cheaper than any thread hop.
  The loop does wait for the rare long one: deleting a thread of thousands of items,
  or the WAL checkpoint SQLite runs every ~1,000 written pages (milliseconds).
  A call never yields inside its transaction, and when another process holds the
  write lock the whole call is retried after an asyncio sleep (``_store_call``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from chatkit.store import NotFoundError
from chatkit.types import Attachment, FeedbackKind, Page, ThreadItem, ThreadMetadata
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    LargeBinary,
    Select,
    Table,
    Text,
    bindparam,
    delete,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, Result, Row, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool

from app.context import RequestContext
from app.sdk_fixes.inline_sqlite import create_inline_sqlite_engine
from app.stores.base import (
    ATTACHMENT_ADAPTER,
    ITEM_ADAPTER,
    AppStore,
    AttachmentBoundError,
    CounterAdd,
    Feedback,
    Order,
    UploadInfo,
    as_utc,
    attachment_json,
    check_chunk,
    check_feedback_kind,
    check_limit,
    check_order,
    feedback_item_ids,
    item_json,
    page_of,
    thread_json,
)
from app.stores.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_WRITE_OPTION,
    create_engine,
    ensure_sqlite_wal,
    is_sqlite_busy,
)
from app.stores.migrate import schema_at_head, upgrade_to_head
from app.stores.schema import (
    attachment_chunks,
    attachments,
    counters,
    feedback,
    items,
    threads,
)
from app.stores.urls import MEMORY_URL, is_sqlite, normalize_database_url

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def _no_nul(*values: str | None) -> None:
    """PostgreSQL text cannot hold NUL (U+0000), so no stored id contains one.

    A lookup for such an id is NotFoundError on every database alike, instead of the
    driver's encoding error (an HTTP 500) on PostgreSQL.
    """
    if any(value is not None and "\x00" in value for value in values):
        raise NotFoundError("No such id")


def _title_column(title: str | None) -> str | None:
    # The column is a copy for queries; ``data`` keeps the exact title (JSON escapes NUL).
    return None if title is None else title.replace("\x00", "\ufffd")


_P = ParamSpec("_P")
_R = TypeVar("_R")
_unfinished: set[asyncio.Task[Any]] = set()


def _store_call(
    method: Callable[_P, Coroutine[Any, Any, _R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """One store call as a unit: run to its end, and retried while SQLite is locked.

    A client that hangs up cancels its request, and under Starlette (anyio) every later
    await of that request is cancelled again. A query cut off in the middle makes
    SQLAlchemy terminate its connection: asyncpg's is thrown away. Shielded, the call
    commits or rolls back and returns its connection to the pool; the caller still gets
    CancelledError at once.

    SQLite's write lock held by another process fails the call at once (the inline
    engine's busy timeout is 0); its transaction has rolled back, so it is run again
    after a sleep that leaves the loop free, for up to SQLITE_BUSY_TIMEOUT_MS.
    """

    async def until_unlocked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        pause = 0.001
        while True:
            try:
                return await method(*args, **kwargs)
            except OperationalError as error:
                if not is_sqlite_busy(error) or time.monotonic() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(2 * pause, 0.05)

    @functools.wraps(method)
    async def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        task: asyncio.Task[_R] = asyncio.ensure_future(until_unlocked(*args, **kwargs))
        _unfinished.add(task)
        task.add_done_callback(_forget)
        return await asyncio.shield(task)

    return call


class StoreConnection(Protocol):
    """What the store's queries need of a connection: AsyncConnection has it."""

    async def execute(self, statement: Any, parameters: Any = None) -> Result[Any]: ...

    async def scalar(self, statement: Any, parameters: Any = None) -> Any: ...


class InlineConnection:
    """A synchronous connection behind the awaitable methods the queries use."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def execute(self, statement: Any, parameters: Any = None) -> Result[Any]:
        return self._connection.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self._connection.scalar(statement, parameters)


def _forget(task: asyncio.Task[Any]) -> None:
    _unfinished.discard(task)
    if not task.cancelled():
        task.exception()  # an error nobody waits for any more is not "never retrieved"


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


def chunk_query(attachment_id: str, upload_id: str, seq: int) -> Select[tuple[bytes]]:
    """One chunk of a download: a primary-key lookup."""
    c = attachment_chunks.c
    return select(c.data).where(
        c.upload_id == upload_id, c.seq == seq, c.attachment_id == attachment_id
    )


def orphans_delete(cutoff: datetime) -> Any:
    """Attachments no message names, created before ``cutoff``: every user's."""
    a = attachments.c
    return delete(attachments).where(a.thread_id.is_(None), a.created_at < cutoff).returning(a.id)


def unfinished_chunks_delete(cutoff: datetime) -> Any:
    """Chunks written before ``cutoff`` of uploads that never finished or were replaced:
    no attachment names their upload id."""
    a, c = attachments.c, attachment_chunks.c
    finished = select(a.id).where(a.id == c.attachment_id, a.upload_id == c.upload_id)
    return delete(attachment_chunks).where(c.created_at < cutoff, ~finished.exists())


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
        self._engine_options = engine_options
        self._sqlite = is_sqlite(url)
        # The async engine migrates; on SQLite the queries take the inline one.
        self._inline: Engine | None = create_inline_sqlite_engine(url) if self._sqlite else None
        self._inline_write = (
            self._inline.execution_options(**{SQLITE_WRITE_OPTION: True}) if self._inline else None
        )
        # One writer at a time on SQLite anyway: queue here rather than in busy-wait loops.
        self._write_lock = asyncio.Lock() if self._sqlite else None
        self._counter_statements: dict[int, Any] = {}  # add_to_counters' upserts, by size

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @cached_property
    def _engine(self) -> AsyncEngine:
        # Built on first use: on SQLite only a migration needs it (see migrate.py).
        return create_engine(self.url, **self._engine_options)

    def _engine_built(self) -> bool:
        return "_engine" in vars(self)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Create or upgrade the schema (Alembic to head). Safe to call on every boot."""
        async with self._lock():
            if self._sqlite:
                database = make_url(self.url).database
                if database:
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                    await ensure_sqlite_wal(database)
            if not await schema_at_head(self._inline or self._engine):
                await upgrade_to_head(self._engine)

    async def close(self) -> None:
        if self._inline is not None:
            self._inline.dispose()
        if self._engine_built():
            await self._engine.dispose()

    def connections_in_use(self) -> int:
        """Connections checked out of the store's pools (0 between calls)."""
        pools = [self._engine.pool] if self._engine_built() else []
        pools += [self._inline.pool] if self._inline else []
        return sum(pool.checkedout() for pool in pools if isinstance(pool, QueuePool))

    async def ping(self) -> None:
        async with self._read() as conn:
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
    async def _read(self) -> AsyncIterator[StoreConnection]:
        if self._inline is None:
            async with self._engine.connect() as conn:
                yield conn
        else:
            with self._inline.connect() as inline:
                yield InlineConnection(inline)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[StoreConnection]:
        async with self._lock():
            if self._inline_write is None:
                async with self._engine.begin() as conn:
                    yield conn
            else:
                with self._inline_write.begin() as inline:
                    yield InlineConnection(inline)

    def _insert(self, table: Table) -> Any:
        # Both dialect inserts offer on_conflict_do_update/excluded with the same signature.
        if self._sqlite:
            return sqlite_insert(table)
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)

    @staticmethod
    async def _require_thread(conn: StoreConnection, thread_id: str, user_id: str) -> int:
        seq = await conn.scalar(
            select(threads.c.seq).where(threads.c.id == thread_id, threads.c.user_id == user_id)
        )
        if seq is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        return int(seq)

    @staticmethod
    async def _item_seq(
        conn: StoreConnection, item_id: str, thread_id: str, user_id: str
    ) -> int | None:
        """The item's seq when it is in this thread of this user, else None.

        Looked up by its unique id alone, then checked: with the thread and the user in
        the WHERE clause too, PostgreSQL's generic plan for the prepared statement (from
        its sixth run on) walks the (thread_id, user_id, seq) index instead: every item
        of the thread, a cost that grows with it (timed on a thread of 10,000 items: a
        cursor page took 11.4 ms that way, 2.6 ms this way).
        """
        row = (
            await conn.execute(
                select(items.c.seq, items.c.thread_id, items.c.user_id).where(items.c.id == item_id)
            )
        ).first()
        if row is None or (row.thread_id, row.user_id) != (thread_id, user_id):
            return None
        return int(row.seq)

    # -- threads ---------------------------------------------------------------------

    @_store_call
    async def load_thread(self, thread_id: str, context: RequestContext) -> ThreadMetadata:
        _no_nul(thread_id)
        async with self._read() as conn:
            data = await conn.scalar(
                select(threads.c.data).where(
                    threads.c.id == thread_id, threads.c.user_id == context.user_id
                )
            )
        if data is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        return ThreadMetadata.model_validate_json(data)

    @_store_call
    async def save_thread(self, thread: ThreadMetadata, context: RequestContext) -> None:
        _no_nul(thread.id)
        stmt = self._insert(threads).values(
            id=thread.id,
            user_id=context.user_id,
            title=_title_column(thread.title),
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

    @_store_call
    async def load_threads(
        self, limit: int, after: str | None, order: str, context: RequestContext
    ) -> Page[ThreadMetadata]:
        limit, direction = check_limit(limit), check_order(order)
        _no_nul(after)
        async with self._read() as conn:
            after_seq = None
            if after is not None:
                after_seq = await self._require_thread(conn, after, context.user_id)
            query = threads_page_query(context.user_id, after_seq, limit, direction)
            rows = (await conn.execute(query)).all()
        data = [ThreadMetadata.model_validate_json(row.data) for row in rows[:limit]]
        return page_of(data, len(rows) > limit)

    @_store_call
    async def delete_thread(self, thread_id: str, context: RequestContext) -> None:
        _no_nul(thread_id)
        user_id = context.user_id
        async with self._write() as conn:
            # Items go explicitly too, so nothing depends on PRAGMA foreign_keys alone.
            await conn.execute(
                delete(feedback).where(
                    feedback.c.user_id == user_id, feedback.c.thread_id == thread_id
                )
            )
            await conn.execute(
                delete(items).where(items.c.thread_id == thread_id, items.c.user_id == user_id)
            )
            bound = (attachments.c.thread_id == thread_id) & (attachments.c.user_id == user_id)
            await conn.execute(
                delete(attachment_chunks).where(
                    attachment_chunks.c.attachment_id.in_(select(attachments.c.id).where(bound))
                )
            )
            gone = await conn.execute(delete(attachments).where(bound).returning(attachments.c.id))
            attachment_ids = [row.id for row in gone]
            deleted = await conn.execute(
                delete(threads)
                .where(threads.c.id == thread_id, threads.c.user_id == user_id)
                .returning(threads.c.seq)
            )
            if deleted.first() is None:
                raise NotFoundError(f"Thread {thread_id} not found")  # rolls back
        await self._attachments_deleted(attachment_ids)

    # -- items -----------------------------------------------------------------------

    @_store_call
    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: RequestContext,
    ) -> Page[ThreadItem]:
        limit, direction = check_limit(limit), check_order(order)
        _no_nul(thread_id, after)
        user_id = context.user_id
        async with self._read() as conn:
            if after is None:
                # One query for the newest or oldest page (every turn loads one): items
                # carry their thread's user_id, so rows prove the thread is the caller's,
                # and only an empty page needs the ownership check.
                query = items_page_query(thread_id, user_id, None, limit, direction)
                rows = (await conn.execute(query)).all()
                if not rows:
                    await self._require_thread(conn, thread_id, user_id)
                return self._items_page(rows, limit, context)
            await self._require_thread(conn, thread_id, user_id)
            after_seq = await self._item_seq(conn, after, thread_id, user_id)
            if after_seq is None:
                raise NotFoundError(f"Item {after} not found in thread {thread_id}")
            query = items_page_query(thread_id, user_id, after_seq, limit, direction)
            rows = (await conn.execute(query)).all()
        return self._items_page(rows, limit, context)

    def _items_page(
        self, rows: Sequence[Row[tuple[str, str]]], limit: int, context: RequestContext
    ) -> Page[ThreadItem]:
        data = [
            self._presented_item(ITEM_ADAPTER.validate_json(row.data), context)
            for row in rows[:limit]
        ]
        return page_of(data, len(rows) > limit)

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: RequestContext
    ) -> None:
        # The SDK can add the same item twice, so this is the same upsert as save_item.
        await self._upsert_item(thread_id, item, context)

    async def save_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        await self._upsert_item(thread_id, item, context)

    @_store_call
    async def _upsert_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        # INSERT ... SELECT from the caller's own thread row: inserts nothing when the
        # thread is not theirs, and the WHERE guard refuses to take over an item id that
        # lives in another thread. Either way RETURNING is empty -> NotFoundError.
        _no_nul(thread_id, item.id)
        values = {
            "item_id": item.id,
            "item_type": item.type,
            "item_created_at": _utc(item.created_at),
            "item_data": item_json(item),
            "thread_id": thread_id,
            "user_id": context.user_id,
        }
        try:
            async with self._write() as conn:
                inserted = (await conn.execute(self._upsert_item_statement, values)).first()
        except IntegrityError as exc:
            # Postgres: the thread was deleted between our SELECT and the FK check.
            raise NotFoundError(f"Thread {thread_id} not found") from exc
        if inserted is None:
            raise NotFoundError(f"Item {item.id} not found in thread {thread_id}")

    @cached_property
    def _upsert_item_statement(self) -> Any:
        """The item upsert, built once (every turn runs it twice): its values are binds."""
        source = select(
            bindparam("item_id", type_=Text),
            threads.c.id,
            threads.c.user_id,
            bindparam("item_type", type_=Text),
            bindparam("item_created_at", type_=DateTime(timezone=True)),
            bindparam("item_data", type_=Text),
        ).where(
            threads.c.id == bindparam("thread_id", type_=Text),
            threads.c.user_id == bindparam("user_id", type_=Text),
        )
        stmt = self._insert(items).from_select(
            ["id", "thread_id", "user_id", "type", "created_at", "data"], source
        )
        return stmt.on_conflict_do_update(
            index_elements=[items.c.id],
            set_={
                "type": stmt.excluded.type,
                "created_at": stmt.excluded.created_at,
                "data": stmt.excluded.data,
            },
            where=(items.c.user_id == stmt.excluded.user_id)
            & (items.c.thread_id == stmt.excluded.thread_id),
        ).returning(items.c.seq)

    @_store_call
    async def load_item(self, thread_id: str, item_id: str, context: RequestContext) -> ThreadItem:
        _no_nul(thread_id, item_id)
        async with self._read() as conn:
            # By the unique id alone, then checked: see _item_seq.
            row = (
                await conn.execute(
                    select(items.c.data, items.c.thread_id, items.c.user_id).where(
                        items.c.id == item_id
                    )
                )
            ).first()
        if row is None or (row.thread_id, row.user_id) != (thread_id, context.user_id):
            raise NotFoundError(f"Item {item_id} not found in thread {thread_id}")
        return self._presented_item(ITEM_ADAPTER.validate_json(row.data), context)

    @_store_call
    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: RequestContext
    ) -> None:
        _no_nul(thread_id, item_id)
        async with self._write() as conn:
            await self._require_thread(conn, thread_id, context.user_id)
            # A missing item in an owned thread is a no-op: the SDK emits removals for
            # items it streamed but never persisted (guardrail tripwires).
            seq = await self._item_seq(conn, item_id, thread_id, context.user_id)
            if seq is not None:
                await conn.execute(delete(feedback).where(feedback.c.item_id == item_id))
                await conn.execute(delete(items).where(items.c.seq == seq))

    # -- feedback ----------------------------------------------------------------------

    @_store_call
    async def save_feedback(
        self,
        thread_id: str,
        item_ids: Sequence[str],
        kind: FeedbackKind,
        context: RequestContext,
    ) -> None:
        rated = feedback_item_ids(item_ids)
        _no_nul(thread_id, *rated)
        user_id = context.user_id
        rated_at = datetime.now(UTC)
        try:
            async with self._write() as conn:
                if not rated:
                    await self._require_thread(conn, thread_id, user_id)
                    return
                # By the unique ids alone, then checked (see _item_seq). Items carry
                # their thread's user_id, so owned items prove the thread is the caller's.
                found = await conn.execute(
                    select(items.c.id, items.c.thread_id, items.c.user_id).where(
                        items.c.id.in_(rated)
                    )
                )
                mine = (thread_id, user_id)
                owned = {row.id for row in found if (row.thread_id, row.user_id) == mine}
                missing = [item_id for item_id in rated if item_id not in owned]
                if missing:
                    raise NotFoundError(f"Item {missing[0]} not found in thread {thread_id}")
                rows = [
                    {
                        "user_id": user_id,
                        "thread_id": thread_id,
                        "item_id": item_id,
                        "kind": kind,
                        "rated_at": rated_at,
                    }
                    for item_id in rated
                ]
                stmt = self._insert(feedback).values(rows)
                await conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=list(feedback.primary_key.columns),
                        set_={"kind": stmt.excluded.kind, "rated_at": stmt.excluded.rated_at},
                    )
                )
        except IntegrityError as exc:
            # Postgres: an item was deleted between our SELECT and the FK check.
            raise NotFoundError(f"Item not found in thread {thread_id}") from exc

    @_store_call
    async def load_feedback(self, thread_id: str, context: RequestContext) -> list[Feedback]:
        _no_nul(thread_id)
        f = feedback.c
        async with self._read() as conn:
            await self._require_thread(conn, thread_id, context.user_id)
            rows = (
                await conn.execute(
                    select(f.item_id, f.kind, f.rated_at)
                    .where(f.user_id == context.user_id, f.thread_id == thread_id)
                    .order_by(f.item_id)
                )
            ).all()
        return [
            Feedback(row.item_id, check_feedback_kind(row.kind), as_utc(row.rated_at))
            for row in rows
        ]

    # -- attachments -----------------------------------------------------------------

    @_store_call
    async def save_attachment(self, attachment: Attachment, context: RequestContext) -> None:
        # The upload columns are finish_upload's; thread_id is set once, by the first
        # message that names the attachment (a save naming another thread is refused).
        _no_nul(attachment.id, attachment.thread_id)
        stmt = self._insert(attachments).values(
            id=attachment.id,
            user_id=context.user_id,
            data=attachment_json(attachment),
            thread_id=attachment.thread_id,
            created_at=datetime.now(UTC),
        )
        bound = attachments.c.thread_id
        stmt = stmt.on_conflict_do_update(
            index_elements=[attachments.c.id],
            set_={
                "data": stmt.excluded.data,
                "thread_id": func.coalesce(bound, stmt.excluded.thread_id),
            },
            where=(attachments.c.user_id == stmt.excluded.user_id)
            & (
                bound.is_(None)
                | stmt.excluded.thread_id.is_(None)
                | (bound == stmt.excluded.thread_id)
            ),
        ).returning(attachments.c.id)
        async with self._write() as conn:
            if (await conn.execute(stmt)).first() is None:
                raise NotFoundError(f"Attachment {attachment.id} not found")

    @_store_call
    async def load_attachment(self, attachment_id: str, context: RequestContext) -> Attachment:
        _no_nul(attachment_id)
        async with self._read() as conn:
            data = await conn.scalar(
                select(attachments.c.data).where(
                    attachments.c.id == attachment_id,
                    attachments.c.user_id == context.user_id,
                )
            )
        if data is None:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        return self._presented(ATTACHMENT_ADAPTER.validate_json(data), context)

    @_store_call
    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        _no_nul(attachment_id)
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
            # The row is gone, so no chunk can be added any more (write_chunk needs it).
            await conn.execute(
                delete(attachment_chunks).where(attachment_chunks.c.attachment_id == attachment_id)
            )
        await self._attachments_deleted([attachment_id])

    # -- attachment uploads ------------------------------------------------------------

    @_store_call
    async def attachment_upload(self, attachment_id: str, context: RequestContext) -> UploadInfo:
        _no_nul(attachment_id)
        a = attachments.c
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(a.upload_id, a.size, a.content_type, a.thread_id, a.created_at).where(
                        a.id == attachment_id, a.user_id == context.user_id
                    )
                )
            ).first()
        if row is None:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        return UploadInfo(
            attachment_id=attachment_id,
            upload_id=row.upload_id,
            size=row.size,
            content_type=row.content_type,
            thread_id=row.thread_id,
            created_at=as_utc(row.created_at),
        )

    @_store_call
    async def write_chunk(
        self, attachment_id: str, upload_id: str, seq: int, data: bytes, context: RequestContext
    ) -> None:
        # One short transaction per chunk: SQLite's write lock is never held across an
        # upload, and a process killed mid-upload leaves only chunks nobody can read.
        check_chunk(seq, data)
        _no_nul(attachment_id, upload_id)
        values = {
            "upload_id": upload_id,
            "seq": seq,
            "attachment_id": attachment_id,
            "user_id": context.user_id,
            "created_at": datetime.now(UTC),
            "data": data,
        }
        try:
            async with self._write() as conn:
                written = (await conn.execute(self._write_chunk_statement, values)).first()
        except IntegrityError as exc:
            # Postgres: the attachment was deleted between our SELECT and the FK check.
            raise NotFoundError(f"Attachment {attachment_id} not found") from exc
        if written is None:
            raise NotFoundError(f"Attachment {attachment_id} not found")

    @cached_property
    def _write_chunk_statement(self) -> Any:
        """INSERT ... SELECT from the caller's own attachment row: nothing when it is not
        theirs; an upload id of another attachment is never overwritten."""
        c = attachment_chunks.c
        source = select(
            bindparam("upload_id", type_=Text),
            bindparam("seq", type_=Integer),
            attachments.c.id,
            bindparam("created_at", type_=DateTime(timezone=True)),
            bindparam("data", type_=LargeBinary),
        ).where(
            attachments.c.id == bindparam("attachment_id", type_=Text),
            attachments.c.user_id == bindparam("user_id", type_=Text),
        )
        stmt = self._insert(attachment_chunks).from_select(
            ["upload_id", "seq", "attachment_id", "created_at", "data"], source
        )
        return stmt.on_conflict_do_update(
            index_elements=[c.upload_id, c.seq],
            set_={"created_at": stmt.excluded.created_at, "data": stmt.excluded.data},
            where=c.attachment_id == stmt.excluded.attachment_id,
        ).returning(c.seq)

    @_store_call
    async def finish_upload(
        self,
        attachment: Attachment,
        upload_id: str,
        size: int,
        content_type: str,
        context: RequestContext,
    ) -> None:
        _no_nul(attachment.id, upload_id)
        a = attachments.c
        owned = (a.id == attachment.id) & (a.user_id == context.user_id)
        async with self._write() as conn:
            # FOR UPDATE (PostgreSQL; SQLite's writers are serialized already): a
            # concurrent finish or discard of this attachment waits for our commit.
            row = (
                await conn.execute(select(a.upload_id, a.thread_id).where(owned).with_for_update())
            ).first()
            if row is None:
                raise NotFoundError(f"Attachment {attachment.id} not found")
            if row.thread_id is not None:
                raise AttachmentBoundError(f"Attachment {attachment.id} is part of a message")
            await conn.execute(
                update(attachments)
                .where(owned)
                .values(
                    data=attachment_json(attachment),
                    upload_id=upload_id,
                    size=size,
                    content_type=content_type,
                )
            )
            if row.upload_id is not None and row.upload_id != upload_id:
                # The replaced upload's bytes; uploads still running keep theirs.
                c = attachment_chunks.c
                await conn.execute(
                    delete(attachment_chunks).where(
                        c.upload_id == row.upload_id, c.attachment_id == attachment.id
                    )
                )

    @_store_call
    async def discard_upload(self, upload_id: str) -> None:
        _no_nul(upload_id)
        c = attachment_chunks.c
        async with self._write() as conn:
            # Wait for a finish_upload of it still committing (the request was cancelled
            # while it ran): then the upload is finished and its chunks stay.
            owners = select(c.attachment_id).where(c.upload_id == upload_id)
            await conn.execute(
                select(attachments.c.id).where(attachments.c.id.in_(owners)).with_for_update()
            )
            finished = select(attachments.c.id).where(attachments.c.upload_id == upload_id)
            await conn.execute(
                delete(attachment_chunks).where(c.upload_id == upload_id, ~finished.exists())
            )

    async def read_chunks(
        self, attachment_id: str, context: RequestContext
    ) -> AsyncIterator[bytes]:
        # A query per chunk, no connection held between them: a slow reader costs no
        # pool slot and no open snapshot; memory is one chunk.
        info = await self.attachment_upload(attachment_id, context)
        if info.upload_id is None:
            raise NotFoundError(f"Attachment {attachment_id} not uploaded")
        seq, total = 0, 0
        while (data := await self._chunk(attachment_id, info.upload_id, seq)) is not None:
            total += len(data)
            yield data
            seq += 1
        if info.size is not None and total != info.size:
            # Replaced or deleted while read: the bytes sent so far are not the file.
            raise NotFoundError(f"Attachment {attachment_id} changed while read")

    @_store_call
    async def _chunk(self, attachment_id: str, upload_id: str, seq: int) -> bytes | None:
        async with self._read() as conn:
            data = await conn.scalar(chunk_query(attachment_id, upload_id, seq))
        return None if data is None else bytes(data)

    @_store_call
    async def sweep_orphan_attachments(self, older_than: datetime) -> list[str]:
        # Single DELETE statements, no read-then-delete: replicas sweeping at once each
        # delete (and report) a row at most once, and a row a message binds meanwhile
        # no longer matches (PostgreSQL re-checks the WHERE on the row it waited for).
        cutoff = as_utc(older_than)
        c = attachment_chunks.c
        async with self._write() as conn:
            ids = [row.id for row in await conn.execute(orphans_delete(cutoff))]
            # Their chunks (the FK cascade takes them too): rows gone cannot come back.
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                await conn.execute(delete(attachment_chunks).where(c.attachment_id.in_(batch)))
            # (An upload still running after a whole orphan period loses its first
            # chunks; read_chunks then fails on the size.)
            await conn.execute(unfinished_chunks_delete(cutoff))
        await self._attachments_deleted(ids)
        return ids

    # -- counters --------------------------------------------------------------------

    @_store_call
    async def add_to_counters(self, additions: Sequence[CounterAdd]) -> list[int]:
        if not additions:
            return []
        _no_nul(*(add.key for add in additions))
        # Rows in key order: two batches upserting the same rows lock them in one order,
        # so concurrent replicas cannot deadlock on PostgreSQL.
        ordered = sorted(additions, key=lambda add: (add.key, add.window_start))
        values: dict[str, Any] = {}
        for i, add in enumerate(ordered):
            values |= {
                f"key{i}": add.key,
                f"window_start{i}": add.window_start,
                f"amount{i}": add.amount,
                f"expires_at{i}": as_utc(add.expires_at),
            }
        async with self._write() as conn:
            rows = (await conn.execute(self._add_to_counters_statement(len(ordered)), values)).all()
        counts = {(str(k), int(w)): int(n) for k, w, n in (tuple(row) for row in rows)}
        return [counts[(add.key, add.window_start)] for add in additions]

    def _add_to_counters_statement(self, size: int) -> Any:
        """The upsert of ``size`` counters, built once per size (a turn adds 3 to 6).

        Text, not a Core insert: SQLAlchemy cannot cache the compiled form of an insert
        with ON CONFLICT, and compiling it again took most of a call's time. The SQL is
        the same on PostgreSQL and SQLite (3.35+). One statement, each row's upsert
        atomic on both: concurrent replicas never lose a hit.
        """
        cached = self._counter_statements.get(size)
        if cached is not None:
            return cached
        table = counters.name
        rows = ", ".join(
            f"(:key{i}, :window_start{i}, :amount{i}, :expires_at{i})" for i in range(size)
        )
        # Only the table's name and numbered placeholders are formatted in; values bind.
        sql = (
            f'INSERT INTO {table} ("key", window_start, "count", expires_at) VALUES {rows} '  # noqa: S608
            f'ON CONFLICT ("key", window_start) DO UPDATE SET "count" = {table}."count" + '
            'excluded."count" RETURNING "key", window_start, "count"'
        )
        stmt = text(sql).bindparams(
            *(
                param
                for i in range(size)
                for param in (
                    bindparam(f"key{i}", type_=Text),
                    bindparam(f"window_start{i}", type_=BigInteger),
                    bindparam(f"amount{i}", type_=BigInteger),
                    bindparam(f"expires_at{i}", type_=DateTime(timezone=True)),
                )
            )
        )
        self._counter_statements[size] = stmt
        return stmt

    @_store_call
    async def read_counter(self, key: str, window_start: int) -> int:
        _no_nul(key)
        c = counters.c
        async with self._read() as conn:
            value = await conn.scalar(
                select(c.count).where(c.key == key, c.window_start == window_start)
            )
        return 0 if value is None else int(value)

    @_store_call
    async def delete_expired_counters(self, now: datetime) -> int:
        # SKIP LOCKED (PostgreSQL; SQLite's writers are serialized already): rows a turn is
        # upserting right now (a refund into the window that just ended) stay for the next
        # sweep. Waiting for them instead locks the expired rows in the table's order while
        # the upsert locks them in key order: a deadlock, and the turn's HTTP 500.
        c = counters.c
        expired = (
            select(c.key, c.window_start)
            .where(c.expires_at < as_utc(now))
            .with_for_update(skip_locked=True)
        )
        async with self._write() as conn:
            result = await conn.execute(
                delete(counters).where(tuple_(c.key, c.window_start).in_(expired)).returning(c.key)
            )
            return len(result.all())
