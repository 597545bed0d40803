"""Upgrades keep data: a database made by an older template, with real rows, migrated.

Each test builds a SQLite file and a PostgreSQL database at revision 0001 (the schema
projects generated before attachments have), fills it through that schema, then lets
the store's own start() upgrade it, as a redeployed app does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from chatkit.store import NotFoundError
from chatkit.types import (
    FileAttachment,
    ImageAttachment,
    InferenceOptions,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)
from pydantic import AnyUrl
from sqlalchemy.engine import Connection

from app.context import RequestContext
from app.stores import SQLStore
from app.stores.engine import SQLITE_WRITE_OPTION, create_engine
from app.stores.migrate import HEAD_REVISION, alembic_config
from app.stores.schema import metadata
from tests.store_fixtures import SQL_STORE_KINDS, database_url_for

ALICE = RequestContext(user_id="alice")

# The 0001 tables as that revision made them (the app's schema.py is the newest one).
V1_THREADS = sa.table(
    "chatkit_threads",
    sa.column("id", sa.Text()),
    sa.column("user_id", sa.Text()),
    sa.column("title", sa.Text()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("data", sa.Text()),
)
V1_ITEMS = sa.table(
    "chatkit_items",
    sa.column("id", sa.Text()),
    sa.column("thread_id", sa.Text()),
    sa.column("user_id", sa.Text()),
    sa.column("type", sa.Text()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("data", sa.Text()),
)
V1_ATTACHMENTS = sa.table(
    "chatkit_attachments",
    sa.column("id", sa.Text()),
    sa.column("user_id", sa.Text()),
    sa.column("data", sa.Text()),
)


@pytest.fixture(params=SQL_STORE_KINDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        yield url


async def alembic(url: str, action: str, revision: str) -> None:
    """``alembic upgrade|downgrade REVISION`` in one transaction, as migrate.py runs it."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(**{SQLITE_WRITE_OPTION: True})
            async with conn.begin():

                def run(sync: Connection) -> None:
                    getattr(command, action)(alembic_config(sync), revision)

                await conn.run_sync(run)
    finally:
        await engine.dispose()


async def execute(url: str, *statements: sa.Executable) -> list[list[sa.Row[object]]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            results = [await conn.execute(statement) for statement in statements]
            return [list(r) if r.returns_rows else [] for r in results]
    finally:
        await engine.dispose()


async def version_and_tables(url: str) -> tuple[list[str], set[str], set[str]]:
    """The revision, the tables and chatkit_attachments' columns."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def look(sync: Connection) -> tuple[list[str], set[str], set[str]]:
                inspector = sa.inspect(sync)
                versions = list(sync.execute(sa.text("SELECT version_num FROM alembic_version")))
                columns = {c["name"] for c in inspector.get_columns("chatkit_attachments")}
                return [v[0] for v in versions], set(inspector.get_table_names()), columns

            return await conn.run_sync(look)
    finally:
        await engine.dispose()


def v1_rows() -> tuple[ThreadMetadata, UserMessageItem, FileAttachment, ImageAttachment]:
    thread = ThreadMetadata(id="thr_old", title="before the upgrade", created_at=datetime.now())
    sent = FileAttachment(id="atc_sent", name="a.pdf", mime_type="application/pdf")
    sent.thread_id = thread.id
    unsent = ImageAttachment(
        id="atc_unsent",
        name="i.png",
        mime_type="image/png",
        preview_url=AnyUrl("https://example.com/i.png"),
    )
    item = UserMessageItem(
        id="msg_old",
        thread_id=thread.id,
        created_at=datetime.now(),
        content=[UserMessageTextContent(text="hello from 0001")],
        attachments=[sent],
        inference_options=InferenceOptions(),
    )
    return thread, item, sent, unsent


async def fill_v1(
    url: str,
) -> tuple[ThreadMetadata, UserMessageItem, FileAttachment, ImageAttachment]:
    thread, item, sent, unsent = rows = v1_rows()
    await execute(
        url,
        sa.insert(V1_THREADS).values(
            id=thread.id,
            user_id=ALICE.user_id,
            title=thread.title,
            created_at=thread.created_at.astimezone(UTC),
            data=thread.model_dump_json(),
        ),
        sa.insert(V1_ITEMS).values(
            id=item.id,
            thread_id=thread.id,
            user_id=ALICE.user_id,
            type=item.type,
            created_at=item.created_at.astimezone(UTC),
            data=item.model_dump_json(),
        ),
        sa.insert(V1_ATTACHMENTS).values(
            [
                {"id": a.id, "user_id": ALICE.user_id, "data": a.model_dump_json()}
                for a in (sent, unsent)
            ]
        ),
    )
    return rows


async def test_upgrade_from_0001_keeps_every_row(database_url: str) -> None:
    await alembic(database_url, "upgrade", "0001")
    assert (await version_and_tables(database_url))[0] == ["0001"]
    thread, item, sent, unsent = await fill_v1(database_url)

    store = SQLStore(database_url)
    before_upgrade = datetime.now(UTC)
    await store.start()  # what the redeployed app does: schema behind -> upgrade to head
    try:
        versions, tables, columns = await version_and_tables(database_url)
        assert versions == [HEAD_REVISION]
        assert {"chatkit_attachment_chunks", "chatkit_counters", "chatkit_feedback"} <= tables
        assert {"thread_id", "created_at", "upload_id", "size", "content_type"} <= columns
        async with store.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: list(compare_metadata(MigrationContext.configure(sync), metadata))
            )
        assert diff == []

        # Nothing lost, everything as it was.
        assert await store.load_thread(thread.id, ALICE) == thread
        page = await store.load_thread_items(thread.id, None, 10, "asc", ALICE)
        assert page.data == [item]
        assert await store.load_attachment(sent.id, ALICE) == sent
        assert await store.load_attachment(unsent.id, ALICE) == unsent

        # The new columns: bound from the JSON, a full orphan period from the upgrade.
        sent_info = await store.attachment_upload(sent.id, ALICE)
        unsent_info = await store.attachment_upload(unsent.id, ALICE)
        assert (sent_info.thread_id, unsent_info.thread_id) == (thread.id, None)
        assert sent_info.upload_id is None and sent_info.size is None
        for info in (sent_info, unsent_info):
            assert before_upgrade - timedelta(seconds=5) <= info.created_at <= datetime.now(UTC)
        assert await store.sweep_orphan_attachments(before_upgrade - timedelta(hours=1)) == []

        # ... and work: an old attachment takes an upload, new rows go in.
        await store.write_chunk(unsent.id, "up_1", 0, b"\x89PNG after", ALICE)
        done = unsent.model_copy(update={"upload_descriptor": None})
        await store.finish_upload(done, "up_1", 10, "image/png", ALICE)
        assert b"".join([c async for c in store.read_chunks(unsent.id, ALICE)]) == b"\x89PNG after"
        await store.save_feedback(thread.id, [item.id], "positive", ALICE)  # on an old item
        assert [(r.item_id, r.kind) for r in await store.load_feedback(thread.id, ALICE)] == [
            (item.id, "positive")
        ]
        new_thread = ThreadMetadata(id="thr_new", created_at=datetime.now())
        await store.save_thread(new_thread, ALICE)
        page_of_threads = await store.load_threads(10, None, "asc", ALICE)
        assert [t.id for t in page_of_threads.data] == [thread.id, new_thread.id]
        await store.delete_thread(thread.id, ALICE)  # takes its (backfilled) attachment
        with pytest.raises(NotFoundError):
            await store.load_attachment(sent.id, ALICE)
    finally:
        await store.close()


async def test_downgrade_to_0001_keeps_the_rows_and_upgrades_again(database_url: str) -> None:
    await alembic(database_url, "upgrade", "0001")
    thread, item, sent, unsent = await fill_v1(database_url)
    await alembic(database_url, "upgrade", "head")
    store = SQLStore(database_url)
    await store.start()
    await store.write_chunk(unsent.id, "up_1", 0, b"bytes", ALICE)
    await store.finish_upload(unsent, "up_1", 5, "image/png", ALICE)
    await store.save_feedback(thread.id, [item.id], "negative", ALICE)
    await store.close()

    await alembic(database_url, "downgrade", "0001")
    versions, tables, columns = await version_and_tables(database_url)
    assert versions == ["0001"]
    assert "chatkit_attachment_chunks" not in tables  # the bytes go with their table
    assert "chatkit_feedback" not in tables  # and the ratings with theirs
    assert columns == {"id", "user_id", "data"}
    (threads_, items_, attachments_) = await execute(
        database_url,
        sa.select(V1_THREADS.c.id, V1_THREADS.c.data),
        sa.select(V1_ITEMS.c.id, V1_ITEMS.c.data),
        sa.select(V1_ATTACHMENTS.c.id).order_by(V1_ATTACHMENTS.c.id),
    )
    assert [(r.id, ThreadMetadata.model_validate_json(r.data)) for r in threads_] == [
        (thread.id, thread)
    ]
    assert [(r.id, UserMessageItem.model_validate_json(r.data)) for r in items_] == [
        (item.id, item)
    ]
    assert [r.id for r in attachments_] == [sent.id, unsent.id]

    store = SQLStore(database_url)
    await store.start()  # and up again
    try:
        assert await store.load_thread(thread.id, ALICE) == thread
        assert (await store.attachment_upload(sent.id, ALICE)).thread_id == thread.id
    finally:
        await store.close()


async def test_a_start_waits_for_another_process_holding_the_sqlite_write_lock(
    tmp_path: Path,
) -> None:
    """A second replica starting on the same new SQLite file finds the first one's
    migration holding the write lock past busy_timeout: it waits, then starts."""
    import asyncio
    import sqlite3
    import threading

    from app.stores.engine import SQLITE_BUSY_TIMEOUT_MS

    path = tmp_path / "shared.db"
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").fetchall()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(SQLITE_BUSY_TIMEOUT_MS / 1000 + 1.5, holder.rollback)
    release.start()
    store = SQLStore(f"sqlite+aiosqlite:///{path}")
    try:
        await asyncio.wait_for(store.start(), timeout=60)
        thread = ThreadMetadata(id="thr_waited", created_at=datetime.now(UTC))
        await store.save_thread(thread, ALICE)
        assert (await store.load_thread("thr_waited", ALICE)).id == "thr_waited"
    finally:
        release.join()
        holder.close()
        await store.close()
