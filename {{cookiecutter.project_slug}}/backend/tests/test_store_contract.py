"""One contract suite for every store: memory, SQLite (real file) and PostgreSQL.

The chatkit server trusts the store for ownership checks and pagination, so these
tests pin the exact ``chatkit.store.Store`` behaviour plus our user scoping rules.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from chatkit.store import _ID_PREFIXES, NotFoundError
from chatkit.types import (
    Annotation,
    AssistantMessageContent,
    AssistantMessageItem,
    Attachment,
    ClientToolCallItem,
    ClosedStatus,
    CustomSummary,
    EndOfTurnItem,
    EntitySource,
    FileAttachment,
    FileSource,
    ImageAttachment,
    InferenceOptions,
    LockedStatus,
    Page,
    SDKHiddenContextItem,
    SearchTask,
    TaskItem,
    ThoughtTask,
    Thread,
    ThreadItem,
    ThreadMetadata,
    ToolChoice,
    URLSource,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
    WidgetItem,
    Workflow,
    WorkflowItem,
)
from chatkit.widgets import Card, Text
from pydantic import AnyUrl
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError

from app.context import RequestContext
from app.stores import (
    AppStore,
    MemoryStore,
    SQLStore,
    build_store,
    normalize_database_url,
)
from app.stores.base import CHUNK_BYTES, MAX_FEEDBACK_ITEMS, AttachmentBoundError
from app.stores.migrate import HEAD_REVISION, MIGRATION_LOCK_KEY
from app.stores.schema import attachment_chunks, attachments, feedback, items, metadata, threads
from app.stores.sql import (
    chunk_query,
    items_page_query,
    orphans_delete,
    threads_page_query,
    unfinished_chunks_delete,
)
from tests.store_fixtures import (
    SQL_STORE_KINDS,
    STORE_KINDS,
    StoreBackend,
    emptied_postgres_backend,
    open_backend,
    postgres_database,
)

ALICE = RequestContext(user_id="alice")
BOB = RequestContext(user_id="bob")
BACKEND_DIR = Path(__file__).resolve().parent.parent


# -- fixtures (module-local, so they cannot clash with conftest's) ---------------------


@pytest.fixture(scope="session")
def shared_postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(params=STORE_KINDS)
async def store_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreBackend]:
    if request.param != "postgres":
        async with open_backend(request.param, tmp_path) as backend:
            yield backend
        return
    backend = await emptied_postgres_backend(request.getfixturevalue("shared_postgres_url"))
    try:
        yield backend
    finally:
        await backend.close_all()


@pytest.fixture(params=SQL_STORE_KINDS)
async def sql_store_backend(  # a fresh database each time: these tests start from empty
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreBackend]:
    async with open_backend(request.param, tmp_path) as backend:
        yield backend


@pytest.fixture
async def contract_store(store_backend: StoreBackend) -> AppStore:
    return await store_backend.open()


# -- builders ----------------------------------------------------------------------


def make_thread(store: AppStore, ctx: RequestContext = ALICE, title: str = "t") -> ThreadMetadata:
    return ThreadMetadata(id=store.generate_thread_id(ctx), title=title, created_at=datetime.now())


def user_msg(store: AppStore, thread: ThreadMetadata, text_: str = "hi") -> UserMessageItem:
    return UserMessageItem(
        id=store.generate_item_id("message", thread, ALICE),
        thread_id=thread.id,
        created_at=datetime.now(),
        content=[UserMessageTextContent(text=text_)],
        inference_options=InferenceOptions(),
    )


def assistant_msg(
    store: AppStore, thread: ThreadMetadata, text_: str = "yo"
) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=store.generate_item_id("message", thread, ALICE),
        thread_id=thread.id,
        created_at=datetime.now(),
        content=[AssistantMessageContent(text=text_)],
    )


def file_attachment(id_: str = "atc_1", name: str = "a.pdf") -> FileAttachment:
    return FileAttachment(
        id=id_, name=name, mime_type="application/pdf", metadata={"bucket": "b", "n": [1, 2]}
    )


async def new_thread(
    store: AppStore, ctx: RequestContext = ALICE, title: str = "t"
) -> ThreadMetadata:
    thread = make_thread(store, ctx, title)
    await store.save_thread(thread, ctx)
    return thread


async def fill(
    store: AppStore, thread: ThreadMetadata, n: int, ctx: RequestContext = ALICE
) -> list[str]:
    ids = []
    for i in range(n):
        item = user_msg(store, thread, f"m{i}")
        await store.add_thread_item(thread.id, item, ctx)
        ids.append(item.id)
    return ids


async def all_item_ids(store: AppStore, thread_id: str, ctx: RequestContext = ALICE) -> list[str]:
    page = await store.load_thread_items(thread_id, None, 10_000, "asc", ctx)
    return [item.id for item in page.data]


# -- threads -----------------------------------------------------------------------


async def test_save_thread_is_an_upsert(contract_store: AppStore) -> None:
    thread = make_thread(contract_store, title="first")
    await contract_store.save_thread(thread, ALICE)
    thread.title = "second"
    await contract_store.save_thread(thread, ALICE)
    await contract_store.save_thread(thread, ALICE)

    page = await contract_store.load_threads(10, None, "asc", ALICE)
    assert [t.id for t in page.data] == [thread.id]
    assert page.data[0].title == "second"
    assert (await contract_store.load_thread(thread.id, ALICE)).title == "second"


async def test_thread_round_trips_exactly(contract_store: AppStore) -> None:
    thread = ThreadMetadata(
        id=contract_store.generate_thread_id(ALICE),
        title="Ünïcode ✓ title",
        created_at=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2))),
        status=LockedStatus(reason="read only"),
        allowed_image_domains=["img.example.com"],
        metadata={"previous_response_id": "resp_1", "nested": {"a": [1, 2.5, None, True]}},
    )
    await contract_store.save_thread(thread, ALICE)
    loaded = await contract_store.load_thread(thread.id, ALICE)
    assert loaded == thread
    assert loaded.model_dump_json() == thread.model_dump_json()

    thread.status = ClosedStatus(reason="done")
    await contract_store.save_thread(thread, ALICE)
    assert (await contract_store.load_thread(thread.id, ALICE)).status == ClosedStatus(
        reason="done"
    )


async def test_save_thread_accepts_full_thread_and_stores_metadata_only(
    contract_store: AppStore,
) -> None:
    # The server passes a ``Thread`` (with its items page) to save_thread while streaming.
    meta = make_thread(contract_store)
    full = Thread(**meta.model_dump(), items=Page(data=[user_msg(contract_store, meta)]))
    await contract_store.save_thread(full, ALICE)
    loaded = await contract_store.load_thread(meta.id, ALICE)
    assert type(loaded) is ThreadMetadata
    assert loaded == meta
    assert await all_item_ids(contract_store, meta.id) == []


async def test_returned_models_are_copies(contract_store: AppStore) -> None:
    thread = await new_thread(contract_store, title="kept")
    loaded = await contract_store.load_thread(thread.id, ALICE)
    loaded.title = "mutated without save"
    thread.title = "mutated original"
    assert (await contract_store.load_thread(thread.id, ALICE)).title == "kept"


async def test_unknown_ids_raise_not_found(contract_store: AppStore) -> None:
    thread = await new_thread(contract_store)
    with pytest.raises(NotFoundError):
        await contract_store.load_thread("thr_missing", ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.load_item(thread.id, "msg_missing", ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.load_item("thr_missing", "msg_missing", ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.load_thread_items("thr_missing", None, 10, "asc", ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.load_thread_items(thread.id, "msg_missing", 10, "asc", ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.load_threads(10, "thr_missing", "asc", ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.delete_thread("thr_missing", ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.delete_thread_item("thr_missing", "msg_missing", ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.add_thread_item("thr_missing", user_msg(contract_store, thread), ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.save_item("thr_missing", user_msg(contract_store, thread), ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.load_attachment("atc_missing", ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.delete_attachment("atc_missing", ALICE)


async def test_empty_pages(contract_store: AppStore) -> None:
    assert await contract_store.load_threads(10, None, "desc", ALICE) == Page(
        data=[], has_more=False, after=None
    )
    thread = await new_thread(contract_store)
    page = await contract_store.load_thread_items(thread.id, None, 10, "asc", ALICE)
    assert page == Page(data=[], has_more=False, after=None)


async def test_bad_order_and_limit_are_rejected(contract_store: AppStore) -> None:
    thread = await new_thread(contract_store)
    with pytest.raises(ValueError, match="order"):
        await contract_store.load_threads(10, None, "sideways", ALICE)
    with pytest.raises(ValueError, match="limit"):
        await contract_store.load_thread_items(thread.id, None, -1, "asc", ALICE)


# -- pagination ----------------------------------------------------------------------


async def _collect_pages(
    load: Callable[[str | None, int], Awaitable[Page[Any]]], limit: int
) -> tuple[list[str], list[Page[Any]]]:
    ids: list[str] = []
    pages: list[Page[Any]] = []
    after = None
    while True:
        page = await load(after, limit)
        pages.append(page)
        ids.extend(x.id for x in page.data)
        # The next page's cursor; None on the last page, as chatkit's own stores return.
        assert page.after == (page.data[-1].id if page.has_more else None)
        if not page.has_more:
            return ids, pages
        after = page.after
        assert len(pages) < 100, "pagination does not terminate"


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_thread_pagination(contract_store: AppStore, order: str) -> None:
    created = [(await new_thread(contract_store, title=f"t{i}")).id for i in range(25)]
    await new_thread(contract_store, BOB)  # other users' threads never show up

    async def load(after: str | None, limit: int) -> Page[ThreadMetadata]:
        return await contract_store.load_threads(limit, after, order, ALICE)

    ids, pages = await _collect_pages(load, 10)
    expected = created if order == "asc" else created[::-1]
    assert ids == expected  # complete, ordered, no repeats
    assert [len(p.data) for p in pages] == [10, 10, 5]
    assert [p.has_more for p in pages] == [True, True, False]

    # Exact multiple of the page size: the last full page must not claim more.
    ids, pages = await _collect_pages(load, 5)
    assert ids == expected
    assert [p.has_more for p in pages] == [True, True, True, True, False]


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_item_pagination(contract_store: AppStore, order: str) -> None:
    thread = await new_thread(contract_store)
    other = await new_thread(contract_store)
    created = await fill(contract_store, thread, 25)
    await fill(contract_store, other, 3)  # interleaved seqs from another thread

    async def load(after: str | None, limit: int) -> Page[ThreadItem]:
        return await contract_store.load_thread_items(thread.id, after, limit, order, ALICE)

    ids, pages = await _collect_pages(load, 10)
    assert ids == (created if order == "asc" else created[::-1])
    assert [len(p.data) for p in pages] == [10, 10, 5]
    assert [p.has_more for p in pages] == [True, True, False]

    # A cursor in the middle continues right after it, in either direction.
    page = await contract_store.load_thread_items(thread.id, created[12], 3, "asc", ALICE)
    assert [x.id for x in page.data] == created[13:16]
    page = await contract_store.load_thread_items(thread.id, created[12], 3, "desc", ALICE)
    assert [x.id for x in page.data] == created[9:12][::-1]
    # The last element as cursor gives an empty final page.
    page = await contract_store.load_thread_items(thread.id, created[-1], 3, "asc", ALICE)
    assert page == Page(data=[], has_more=False, after=None)


async def test_upserts_keep_position_in_pages(contract_store: AppStore) -> None:
    t1, t2, t3 = [await new_thread(contract_store, title=f"t{i}") for i in range(3)]
    t1.title = "renamed"
    await contract_store.save_thread(t1, ALICE)
    page = await contract_store.load_threads(10, None, "asc", ALICE)
    assert [t.id for t in page.data] == [t1.id, t2.id, t3.id]


# -- items ---------------------------------------------------------------------------


async def test_add_thread_item_is_idempotent(contract_store: AppStore) -> None:
    thread = await new_thread(contract_store)
    first = user_msg(contract_store, thread, "first")
    second = assistant_msg(contract_store, thread, "second")
    await contract_store.add_thread_item(thread.id, first, ALICE)
    await contract_store.add_thread_item(thread.id, second, ALICE)
    await contract_store.add_thread_item(thread.id, first, ALICE)  # the SDK may re-add
    assert await all_item_ids(contract_store, thread.id) == [first.id, second.id]
    assert await contract_store.load_item(thread.id, first.id, ALICE) == first


async def test_save_item_upserts(contract_store: AppStore) -> None:
    thread = await new_thread(contract_store)
    ids = await fill(contract_store, thread, 3)
    updated = assistant_msg(contract_store, thread, "updated")
    updated.id = ids[1]
    await contract_store.save_item(thread.id, updated, ALICE)
    assert await all_item_ids(contract_store, thread.id) == ids  # position kept
    assert await contract_store.load_item(thread.id, ids[1], ALICE) == updated

    fresh = assistant_msg(contract_store, thread, "new")
    await contract_store.save_item(thread.id, fresh, ALICE)
    assert await all_item_ids(contract_store, thread.id) == [*ids, fresh.id]


async def test_delete_thread_item(contract_store: AppStore) -> None:
    thread = await new_thread(contract_store)
    ids = await fill(contract_store, thread, 3)
    await contract_store.delete_thread_item(thread.id, ids[1], ALICE)
    assert await all_item_ids(contract_store, thread.id) == [ids[0], ids[2]]
    with pytest.raises(NotFoundError):
        await contract_store.load_item(thread.id, ids[1], ALICE)
    # Deleting an item that is not there is a no-op (the SDK removes streamed items
    # that may never have been persisted).
    await contract_store.delete_thread_item(thread.id, ids[1], ALICE)
    assert await all_item_ids(contract_store, thread.id) == [ids[0], ids[2]]


async def test_delete_thread_removes_its_items(contract_store: AppStore) -> None:
    thread = await new_thread(contract_store)
    keep = await new_thread(contract_store)
    ids = await fill(contract_store, thread, 4)
    kept_ids = await fill(contract_store, keep, 2)
    await contract_store.delete_thread(thread.id, ALICE)

    with pytest.raises(NotFoundError):
        await contract_store.load_thread(thread.id, ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.load_item(thread.id, ids[0], ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.delete_thread(thread.id, ALICE)
    assert [t.id for t in (await contract_store.load_threads(10, None, "asc", ALICE)).data] == [
        keep.id
    ]
    assert await all_item_ids(contract_store, keep.id) == kept_ids
    if isinstance(contract_store, SQLStore):
        async with contract_store.engine.connect() as conn:
            left = await conn.scalar(
                select(func.count()).select_from(items).where(items.c.thread_id == thread.id)
            )
        assert left == 0

    # The id can be reused afterwards (nothing stale left behind).
    await contract_store.save_thread(thread, ALICE)
    assert await all_item_ids(contract_store, thread.id) == []


# -- round trips ---------------------------------------------------------------------


def _round_trip_items(thread_id: str) -> list[ThreadItem]:
    created = datetime(2024, 1, 2, 3, 4, 5, 678901)  # naive, as the SDK stamps items
    return [
        UserMessageItem(
            id="msg_user",
            thread_id=thread_id,
            created_at=created,
            content=[
                UserMessageTextContent(text='Hello ✓ "quoted" \n newline'),
                UserMessageTagContent(
                    id="tag1",
                    text="@doc",
                    data={"k": {"deep": [1, "x"]}},
                    group="g",
                    interactive=True,
                ),
            ],
            attachments=[
                file_attachment("atc_f", "f.pdf"),
                ImageAttachment(
                    id="atc_i",
                    name="i.png",
                    mime_type="image/png",
                    preview_url=AnyUrl("https://example.com/i.png"),
                    thread_id=thread_id,
                ),
            ],
            quoted_text="quote",
            inference_options=InferenceOptions(tool_choice=ToolChoice(id="search"), model="gpt-x"),
        ),
        AssistantMessageItem(
            id="msg_assistant",
            thread_id=thread_id,
            created_at=created.replace(tzinfo=UTC),
            content=[
                AssistantMessageContent(
                    text="Answer",
                    annotations=[
                        Annotation(
                            source=URLSource(title="u", url="https://x.y", attribution="a"), index=3
                        ),
                        Annotation(source=FileSource(title="f", filename="f.pdf")),
                        Annotation(source=EntitySource(title="e", id="ent", data={"a": 1})),
                    ],
                ),
                AssistantMessageContent(text="second part"),
            ],
        ),
        ClientToolCallItem(
            id="tc_1",
            thread_id=thread_id,
            created_at=created,
            status="completed",
            call_id="call_1",
            name="get_weather",
            arguments={"city": "Paris", "days": 3},
            output={"temp": [20.5, None]},
        ),
        WorkflowItem(
            id="wf_1",
            thread_id=thread_id,
            created_at=created,
            workflow=Workflow(
                type="reasoning",
                tasks=[ThoughtTask(content="hmm"), SearchTask(queries=["q"], sources=[])],
                summary=CustomSummary(title="done"),
                expanded=True,
            ),
        ),
        TaskItem(
            id="tsk_1", thread_id=thread_id, created_at=created, task=ThoughtTask(content="t")
        ),
        WidgetItem(
            id="msg_widget",
            thread_id=thread_id,
            created_at=created,
            widget=Card(children=[Text(value="hi")]),
            copy_text="hi",
        ),
        SDKHiddenContextItem(id="shcx_1", thread_id=thread_id, created_at=created, content="ctx"),
        EndOfTurnItem(id="msg_eot", thread_id=thread_id, created_at=created),
    ]


async def test_items_round_trip_exactly(contract_store: AppStore) -> None:
    thread = await new_thread(contract_store)
    originals = _round_trip_items(thread.id)
    for item in originals:
        await contract_store.add_thread_item(thread.id, item, ALICE)

    for item in originals:
        loaded = await contract_store.load_item(thread.id, item.id, ALICE)
        assert type(loaded) is type(item)
        assert loaded == item
        assert loaded.model_dump_json() == item.model_dump_json()
    page = await contract_store.load_thread_items(thread.id, None, 100, "asc", ALICE)
    assert page.data == originals


async def test_attachments(contract_store: AppStore) -> None:
    attachment = file_attachment()
    await contract_store.save_attachment(attachment, ALICE)
    assert await contract_store.load_attachment(attachment.id, ALICE) == attachment

    attachment.thread_id = "thr_x"  # the server re-saves attachments once sent
    await contract_store.save_attachment(attachment, ALICE)
    loaded = await contract_store.load_attachment(attachment.id, ALICE)
    assert loaded == attachment
    assert loaded.model_dump_json() == attachment.model_dump_json()

    image: Attachment = ImageAttachment(
        id="atc_img", name="i.png", mime_type="image/png", preview_url=AnyUrl("https://e.com/p.png")
    )
    await contract_store.save_attachment(image, ALICE)
    assert await contract_store.load_attachment("atc_img", ALICE) == image

    await contract_store.delete_attachment(attachment.id, ALICE)
    with pytest.raises(NotFoundError):
        await contract_store.load_attachment(attachment.id, ALICE)
    assert await contract_store.load_attachment("atc_img", ALICE) == image


# -- attachment uploads ----------------------------------------------------------------


async def stored_chunks(store: AppStore) -> set[tuple[str, int]]:
    """(upload_id, seq) of every chunk row, whoever's: what is left to sweep."""
    if isinstance(store, MemoryStore):
        return {(u, seq) for u, chunks in store._chunks.items() for seq in chunks}
    assert isinstance(store, SQLStore)
    c = attachment_chunks.c
    async with store.engine.connect() as conn:
        return {(r.upload_id, r.seq) for r in await conn.execute(select(c.upload_id, c.seq))}


async def read_all(store: AppStore, attachment_id: str, ctx: RequestContext = ALICE) -> bytes:
    return b"".join([chunk async for chunk in store.read_chunks(attachment_id, ctx)])


async def uploaded(
    store: AppStore,
    data: bytes,
    id_: str = "atc_1",
    upload_id: str = "up_1",
    ctx: RequestContext = ALICE,
    save: bool = True,
) -> FileAttachment:
    """An attachment whose upload of ``data`` finished, in chunks of CHUNK_BYTES."""
    attachment = file_attachment(id_)
    if save:
        await store.save_attachment(attachment, ctx)
    for seq, start in enumerate(range(0, len(data), CHUNK_BYTES)):
        await store.write_chunk(id_, upload_id, seq, data[start : start + CHUNK_BYTES], ctx)
    done = attachment.model_copy(update={"upload_descriptor": None})
    await store.finish_upload(done, upload_id, len(data), "application/pdf", ctx)
    return done


class Deleted:
    """An ``on_attachments_deleted`` recorder."""

    def __init__(self, store: AppStore) -> None:
        self.calls: list[list[str]] = []
        store.on_attachments_deleted = self

    async def __call__(self, attachment_ids: list[str]) -> None:
        self.calls.append(list(attachment_ids))


async def test_chunks_round_trip(contract_store: AppStore) -> None:
    s = contract_store
    attachment = file_attachment()
    await s.save_attachment(attachment, ALICE)
    info = await s.attachment_upload(attachment.id, ALICE)
    assert (info.attachment_id, info.upload_id, info.size, info.content_type) == (
        attachment.id,
        None,
        None,
        None,
    )
    assert info.thread_id is None
    assert info.created_at.tzinfo is not None
    assert abs(datetime.now(UTC) - info.created_at) < timedelta(minutes=1)

    data = os.urandom(2 * CHUNK_BYTES + 123)  # two full chunks and a short one
    pieces = [data[:CHUNK_BYTES], data[CHUNK_BYTES : 2 * CHUNK_BYTES], data[2 * CHUNK_BYTES :]]
    for seq, piece in enumerate(pieces):
        await s.write_chunk(attachment.id, "up_1", seq, piece, ALICE)
    with pytest.raises(NotFoundError):  # nothing is readable before the upload finishes
        await read_all(s, attachment.id)
    done = attachment.model_copy(update={"upload_descriptor": None, "name": "renamed.pdf"})
    await s.finish_upload(done, "up_1", len(data), "application/pdf", ALICE)

    assert [chunk async for chunk in s.read_chunks(attachment.id, ALICE)] == pieces
    finished = await s.attachment_upload(attachment.id, ALICE)
    assert (finished.upload_id, finished.size, finished.content_type) == (
        "up_1",
        len(data),
        "application/pdf",
    )
    assert finished.created_at == info.created_at
    assert await s.load_attachment(attachment.id, ALICE) == done

    with pytest.raises(ValueError, match="at most"):
        await s.write_chunk(attachment.id, "up_2", 0, b"x" * (CHUNK_BYTES + 1), ALICE)
    with pytest.raises(ValueError, match="seq"):
        await s.write_chunk(attachment.id, "up_2", -1, b"x", ALICE)


async def test_save_attachment_binds_once_and_keeps_the_upload(contract_store: AppStore) -> None:
    s = contract_store
    done = await uploaded(s, b"%PDF-1.7 bytes")
    await s.save_attachment(done.model_copy(update={"thread_id": "thr_a"}), ALICE)
    info = await s.attachment_upload(done.id, ALICE)
    assert (info.thread_id, info.upload_id, info.size) == ("thr_a", "up_1", 14)
    assert (await s.load_attachment(done.id, ALICE)).thread_id == "thr_a"
    assert await read_all(s, done.id) == b"%PDF-1.7 bytes"

    await s.save_attachment(done.model_copy(update={"thread_id": "thr_a"}), ALICE)  # again
    with pytest.raises(NotFoundError):  # bound to the thread it was first sent in
        await s.save_attachment(done.model_copy(update={"thread_id": "thr_b"}), ALICE)
    assert (await s.attachment_upload(done.id, ALICE)).thread_id == "thr_a"
    # A message names it: its bytes are fixed (a late re-upload cannot swap them).
    await s.write_chunk(done.id, "up_2", 0, b"other", ALICE)
    with pytest.raises(AttachmentBoundError):
        await s.finish_upload(done, "up_2", 5, "application/pdf", ALICE)
    assert issubclass(AttachmentBoundError, NotFoundError)
    assert await read_all(s, done.id) == b"%PDF-1.7 bytes"


async def test_reupload_replaces(contract_store: AppStore) -> None:
    s = contract_store
    await uploaded(s, b"old " * 100_000, upload_id="up_old")  # 2 chunks
    attachment = file_attachment()
    await s.write_chunk(attachment.id, "up_new", 0, b"new", ALICE)
    assert await read_all(s, attachment.id) == b"old " * 100_000  # until it finishes
    await s.finish_upload(attachment, "up_new", 3, "text/plain", ALICE)
    assert await read_all(s, attachment.id) == b"new"
    assert (await s.attachment_upload(attachment.id, ALICE)).content_type == "text/plain"
    assert await stored_chunks(s) == {("up_new", 0)}  # the replaced bytes went


async def test_unfinished_upload_is_never_readable(contract_store: AppStore) -> None:
    s = contract_store
    attachment = file_attachment()
    await s.save_attachment(attachment, ALICE)
    await s.write_chunk(attachment.id, "up_1", 0, b"partial", ALICE)
    assert (await s.attachment_upload(attachment.id, ALICE)).upload_id is None
    with pytest.raises(NotFoundError):
        await read_all(s, attachment.id)
    await s.discard_upload("up_1")
    assert await stored_chunks(s) == set()

    await uploaded(s, b"kept", save=False)
    await s.discard_upload("up_1")  # a finished upload is not discarded (late cleanup)
    await s.discard_upload("up_unknown")
    assert await read_all(s, attachment.id) == b"kept"
    # A broken re-upload leaves the finished bytes alone.
    await s.write_chunk(attachment.id, "up_2", 0, b"broken", ALICE)
    await s.discard_upload("up_2")
    assert await read_all(s, attachment.id) == b"kept"
    assert await stored_chunks(s) == {("up_1", 0)}


async def test_uploads_are_isolated(contract_store: AppStore) -> None:
    s = contract_store
    done = await uploaded(s, b"alice's bytes")
    await s.save_attachment(file_attachment("atc_bob"), BOB)
    await s.write_chunk("atc_bob", "up_bob", 0, b"bob", BOB)

    with pytest.raises(NotFoundError):
        await s.attachment_upload(done.id, BOB)
    with pytest.raises(NotFoundError):
        await s.write_chunk(done.id, "up_x", 0, b"evil", BOB)
    with pytest.raises(NotFoundError):  # another attachment's upload id: not overwritten
        await s.write_chunk("atc_bob", "up_1", 0, b"evil", BOB)
    with pytest.raises(NotFoundError):
        await s.finish_upload(done, "up_bob", 3, "application/pdf", BOB)
    with pytest.raises(NotFoundError):
        await read_all(s, done.id, BOB)
    with pytest.raises(NotFoundError):
        await s.delete_attachment(done.id, BOB)
    with pytest.raises(NotFoundError):  # ... nor take alice's id over for bob's upload
        await s.finish_upload(file_attachment(), "up_bob", 3, "application/pdf", BOB)
    with pytest.raises(NotFoundError):
        await s.write_chunk("atc_nope", "up_y", 0, b"x", ALICE)
    for bad in ("atc_\x00", "atc_1\x00"):  # NUL: NotFoundError everywhere, not a 500
        with pytest.raises(NotFoundError):
            await s.attachment_upload(bad, ALICE)
        with pytest.raises(NotFoundError):
            await s.write_chunk(bad, "up_z", 0, b"x", ALICE)
        with pytest.raises(NotFoundError):
            await read_all(s, bad)

    assert await read_all(s, done.id) == b"alice's bytes"
    assert await s.load_attachment(done.id, ALICE) == done
    info = await s.attachment_upload(done.id, ALICE)
    assert (info.upload_id, info.size) == ("up_1", 13)
    assert (await s.attachment_upload("atc_bob", BOB)).upload_id is None


async def test_sweep_orphan_attachments(store_backend: StoreBackend) -> None:
    s = await store_backend.open()
    deleted = Deleted(s)
    thread = await new_thread(s)
    orphan = await uploaded(s, b"o" * (CHUNK_BYTES + 1), "atc_orphan", "up_orphan")
    sent = await uploaded(s, b"sent", "atc_sent", "up_sent")
    await s.save_attachment(sent.model_copy(update={"thread_id": thread.id}), ALICE)
    await s.write_chunk("atc_sent", "up_dead", 0, b"killed mid-upload", ALICE)
    await s.save_attachment(file_attachment("atc_bobs"), BOB)  # every user's orphans go
    await asyncio.sleep(0.01)
    cutoff = datetime.now(UTC)
    await asyncio.sleep(0.01)
    fresh = await uploaded(s, b"fresh", "atc_fresh", "up_fresh")
    await s.write_chunk("atc_fresh", "up_running", 0, b"still uploading", ALICE)

    assert sorted(await s.sweep_orphan_attachments(cutoff)) == ["atc_bobs", orphan.id]
    assert [sorted(ids) for ids in deleted.calls] == [["atc_bobs", orphan.id]]
    with pytest.raises(NotFoundError):
        await s.attachment_upload(orphan.id, ALICE)
    with pytest.raises(NotFoundError):
        await s.load_attachment("atc_bobs", BOB)
    assert await read_all(s, sent.id) == b"sent"
    assert await read_all(s, fresh.id) == b"fresh"
    assert await stored_chunks(s) == {("up_sent", 0), ("up_fresh", 0), ("up_running", 0)}

    # Idempotent, also with replicas sweeping at once: each id is reported once.
    assert await s.sweep_orphan_attachments(cutoff) == []
    later = datetime.now(UTC) + timedelta(seconds=1)
    second = s if store_backend.kind == "memory" else await store_backend.open()
    runs = await asyncio.gather(*(st.sweep_orphan_attachments(later) for st in (s, second, s)))
    assert sorted(i for run in runs for i in run) == [fresh.id]
    assert await read_all(s, sent.id) == b"sent"  # bound: never swept
    assert await stored_chunks(s) == {("up_sent", 0)}


async def test_delete_thread_deletes_its_attachments(contract_store: AppStore) -> None:
    s = contract_store
    deleted = Deleted(s)
    doomed, other = await new_thread(s), await new_thread(s)
    for id_, thread in (("atc_a", doomed), ("atc_b", doomed), ("atc_other", other)):
        done = await uploaded(s, id_.encode(), id_, f"up_{id_}")
        await s.save_attachment(done.model_copy(update={"thread_id": thread.id}), ALICE)
    await uploaded(s, b"unsent", "atc_unsent", "up_unsent")

    await s.delete_thread(doomed.id, ALICE)
    assert [sorted(ids) for ids in deleted.calls] == [["atc_a", "atc_b"]]
    for gone in ("atc_a", "atc_b"):
        with pytest.raises(NotFoundError):
            await s.load_attachment(gone, ALICE)
    assert await read_all(s, "atc_other") == b"atc_other"
    assert await read_all(s, "atc_unsent") == b"unsent"
    assert await stored_chunks(s) == {("up_atc_other", 0), ("up_unsent", 0)}

    with pytest.raises(NotFoundError):  # another user's thread: nothing goes
        await s.delete_thread(other.id, BOB)
    assert await read_all(s, "atc_other") == b"atc_other"
    assert len(deleted.calls) == 1


async def test_delete_attachment_deletes_its_chunks(contract_store: AppStore) -> None:
    s = contract_store
    deleted = Deleted(s)
    await uploaded(s, b"x" * (CHUNK_BYTES + 5))
    await s.write_chunk("atc_1", "up_running", 0, b"y", ALICE)
    await uploaded(s, b"keep", "atc_keep", "up_keep")

    await s.delete_attachment("atc_1", ALICE)
    assert deleted.calls == [["atc_1"]]
    assert await stored_chunks(s) == {("up_keep", 0)}
    with pytest.raises(NotFoundError):
        await s.attachment_upload("atc_1", ALICE)
    with pytest.raises(NotFoundError):  # the upload still running cannot add to it
        await s.write_chunk("atc_1", "up_running", 1, b"y", ALICE)

    async def failing(attachment_ids: list[str]) -> None:
        raise RuntimeError("object store down")

    s.on_attachments_deleted = failing  # the rows are gone whatever the callback does
    await s.delete_attachment("atc_keep", ALICE)
    with pytest.raises(NotFoundError):
        await s.load_attachment("atc_keep", ALICE)


# -- isolation -----------------------------------------------------------------------


async def test_users_are_isolated(contract_store: AppStore) -> None:
    s = contract_store
    a_thread = await new_thread(s, ALICE, "alice's")
    a_other = await new_thread(s, ALICE, "alice's other")
    a_items = await fill(s, a_thread, 3)
    a_attachment = file_attachment("atc_alice")
    await s.save_attachment(a_attachment, ALICE)
    b_thread = await new_thread(s, BOB, "bob's")
    b_items = await fill(s, b_thread, 2, BOB)

    async def alice_unchanged() -> None:
        assert (await s.load_thread(a_thread.id, ALICE)).title == "alice's"
        assert await all_item_ids(s, a_thread.id) == a_items
        for item_id in a_items:
            loaded = await s.load_item(a_thread.id, item_id, ALICE)
            assert isinstance(loaded, UserMessageItem)
        assert await s.load_attachment(a_attachment.id, ALICE) == a_attachment

    # list
    listed = await s.load_threads(50, None, "asc", BOB)
    assert [t.id for t in listed.data] == [b_thread.id]
    # read
    with pytest.raises(NotFoundError):
        await s.load_thread(a_thread.id, BOB)
    with pytest.raises(NotFoundError):
        await s.load_thread_items(a_thread.id, None, 10, "asc", BOB)
    with pytest.raises(NotFoundError):
        await s.load_item(a_thread.id, a_items[0], BOB)
    with pytest.raises(NotFoundError):  # own thread id, someone else's item id
        await s.load_item(b_thread.id, a_items[0], BOB)
    # cursors from another user / another thread never leak positions
    with pytest.raises(NotFoundError):
        await s.load_threads(10, a_thread.id, "asc", BOB)
    with pytest.raises(NotFoundError):
        await s.load_thread_items(b_thread.id, a_items[0], 10, "asc", BOB)
    with pytest.raises(NotFoundError):
        await s.load_thread_items(a_other.id, a_items[0], 10, "asc", ALICE)
    # write into someone else's thread
    intruder = user_msg(s, a_thread, "intruder")
    with pytest.raises(NotFoundError):
        await s.add_thread_item(a_thread.id, intruder, BOB)
    with pytest.raises(NotFoundError):
        await s.save_item(a_thread.id, intruder, BOB)
    # overwrite someone else's item id through one's own thread
    hijack = user_msg(s, b_thread, "hijack")
    hijack.id = a_items[0]
    with pytest.raises(NotFoundError):
        await s.add_thread_item(b_thread.id, hijack, BOB)
    with pytest.raises(NotFoundError):
        await s.save_item(b_thread.id, hijack, BOB)
    # ... or move an item between one's own threads
    with pytest.raises(NotFoundError):
        await s.save_item(a_other.id, hijack, ALICE)
    assert await all_item_ids(s, a_other.id) == []
    assert await all_item_ids(s, b_thread.id, BOB) == b_items
    # overwrite someone else's thread
    stolen = a_thread.model_copy(update={"title": "stolen"})
    with pytest.raises(NotFoundError):
        await s.save_thread(stolen, BOB)
    # delete
    with pytest.raises(NotFoundError):
        await s.delete_thread(a_thread.id, BOB)
    with pytest.raises(NotFoundError):
        await s.delete_thread_item(a_thread.id, a_items[0], BOB)
    await s.delete_thread_item(b_thread.id, a_items[0], BOB)  # not in bob's thread: no-op
    # attachments
    with pytest.raises(NotFoundError):
        await s.load_attachment(a_attachment.id, BOB)
    with pytest.raises(NotFoundError):
        await s.delete_attachment(a_attachment.id, BOB)
    with pytest.raises(NotFoundError):
        await s.save_attachment(file_attachment("atc_alice", "bob.exe"), BOB)

    await alice_unchanged()
    assert [t.id for t in (await s.load_threads(50, None, "asc", BOB)).data] == [b_thread.id]


# -- feedback ------------------------------------------------------------------------


async def kinds(store: AppStore, thread_id: str, ctx: RequestContext = ALICE) -> dict[str, str]:
    return {rating.item_id: rating.kind for rating in await store.load_feedback(thread_id, ctx)}


async def test_feedback_is_one_row_per_item_with_the_latest_kind(contract_store: AppStore) -> None:
    s = contract_store
    thread = await new_thread(s)
    first, second, unrated = await fill(s, thread, 3)
    assert await s.load_feedback(thread.id, ALICE) == []

    before = datetime.now(UTC)
    await s.save_feedback(thread.id, [second, first, first], "positive", ALICE)
    rated = await s.load_feedback(thread.id, ALICE)
    assert [r.item_id for r in rated] == sorted([first, second])  # once each, by item id
    assert {r.kind for r in rated} == {"positive"}
    for rating in rated:
        assert before <= rating.rated_at <= datetime.now(UTC)
        assert rating.rated_at.tzinfo is not None

    # A second click replaces the kind and the time; the other item keeps its own.
    [first_rating] = [r for r in rated if r.item_id == first]
    await s.save_feedback(thread.id, [first], "negative", ALICE)
    assert await kinds(s, thread.id) == {first: "negative", second: "positive"}
    [changed] = [r for r in await s.load_feedback(thread.id, ALICE) if r.item_id == first]
    assert changed.rated_at >= first_rating.rated_at
    await s.save_feedback(thread.id, [first], "negative", ALICE)  # the same click again
    assert await kinds(s, thread.id) == {first: "negative", second: "positive"}
    assert unrated not in await kinds(s, thread.id)

    await s.save_feedback(thread.id, [], "positive", ALICE)  # nothing to rate: a no-op
    assert await kinds(s, thread.id) == {first: "negative", second: "positive"}
    too_many = [first] + [f"msg_{i}" for i in range(MAX_FEEDBACK_ITEMS)]
    with pytest.raises(ValueError, match=f"at most {MAX_FEEDBACK_ITEMS} items"):
        await s.save_feedback(thread.id, too_many, "positive", ALICE)
    assert await kinds(s, thread.id) == {first: "negative", second: "positive"}


async def test_feedback_is_the_thread_owners_only_and_all_or_nothing(
    contract_store: AppStore,
) -> None:
    s = contract_store
    a_thread = await new_thread(s, ALICE)
    a_other = await new_thread(s, ALICE)
    [a_item] = await fill(s, a_thread, 1)
    [a_other_item] = await fill(s, a_other, 1)
    b_thread = await new_thread(s, BOB)
    [b_item] = await fill(s, b_thread, 1, BOB)
    await s.save_feedback(a_thread.id, [a_item], "positive", ALICE)

    refused = [
        (a_thread.id, [a_item], BOB),  # another user's thread
        (a_thread.id, [], BOB),  # ... even with nothing to rate
        (b_thread.id, [a_item], BOB),  # another user's item through one's own thread
        (b_thread.id, [b_item, a_item], BOB),  # one foreign item refuses the whole request
        (b_thread.id, [b_item, "msg_missing"], BOB),  # ... as does a missing one
        (a_thread.id, [a_other_item], ALICE),  # one's own item, but of another thread
        ("thr_missing", [], ALICE),
        (a_thread.id, ["msg_\x00"], ALICE),  # no stored id holds NUL (PostgreSQL text can't)
    ]
    for thread_id, item_ids, ctx in refused:
        with pytest.raises(NotFoundError):
            await s.save_feedback(thread_id, item_ids, "negative", ctx)
    with pytest.raises(NotFoundError):
        await s.load_feedback(a_thread.id, BOB)
    with pytest.raises(NotFoundError):
        await s.load_feedback("thr_missing", BOB)

    assert await kinds(s, a_thread.id) == {a_item: "positive"}
    assert await kinds(s, a_other.id) == {}
    assert await kinds(s, b_thread.id, BOB) == {}
    await s.save_feedback(b_thread.id, [b_item], "negative", BOB)
    assert await kinds(s, b_thread.id, BOB) == {b_item: "negative"}
    assert await kinds(s, a_thread.id) == {a_item: "positive"}


async def test_feedback_goes_with_its_item_and_its_thread(contract_store: AppStore) -> None:
    s = contract_store
    thread = await new_thread(s)
    kept = await new_thread(s)
    ids = await fill(s, thread, 3)
    [kept_item] = await fill(s, kept, 1)
    await s.save_feedback(thread.id, ids, "positive", ALICE)
    await s.save_feedback(kept.id, [kept_item], "negative", ALICE)

    await s.delete_thread_item(thread.id, ids[0], ALICE)  # as a retry removes a reply
    assert await kinds(s, thread.id) == {ids[1]: "positive", ids[2]: "positive"}
    await s.delete_thread(thread.id, ALICE)
    with pytest.raises(NotFoundError):
        await s.load_feedback(thread.id, ALICE)

    # The same ids again start unrated: nothing was left behind to come back.
    await s.save_thread(thread, ALICE)
    for item_id in ids:
        item = user_msg(s, thread)
        item.id = item_id
        await s.add_thread_item(thread.id, item, ALICE)
    assert await kinds(s, thread.id) == {}
    assert await kinds(s, kept.id) == {kept_item: "negative"}
    if isinstance(s, SQLStore):
        async with s.engine.connect() as conn:
            rows = (await conn.execute(select(feedback.c.item_id))).scalars().all()
        assert rows == [kept_item]


# -- ids -----------------------------------------------------------------------------


def test_generated_ids_are_full_uuids() -> None:
    for store in (MemoryStore(), build_store("sqlite:///unused.db")):
        thread = make_thread(store)
        assert re.fullmatch(r"thr_[0-9a-f]{32}", thread.id)
        for item_type, prefix in _ID_PREFIXES.items():
            if item_type == "thread":
                continue
            item_id = store.generate_item_id(item_type, thread, ALICE)
            assert re.fullmatch(prefix + r"_[0-9a-f]{32}", item_id), item_id
        many = {store.generate_item_id("message", thread, ALICE) for _ in range(5_000)}
        many |= {store.generate_thread_id(ALICE) for _ in range(5_000)}
        assert len(many) == 10_000


# -- lifecycle, URLs -------------------------------------------------------------------


async def test_ping_and_idempotent_start(store_backend: StoreBackend) -> None:
    store = await store_backend.open()
    await store.ping()
    thread = await new_thread(store)
    await store.start()  # second start on a live database: no-op
    assert (await store.load_thread(thread.id, ALICE)) == thread


def test_normalize_database_url() -> None:
    assert normalize_database_url("memory://") == "memory://"
    assert normalize_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert (
        normalize_database_url("sqlite+aiosqlite:////abs/x.db") == "sqlite+aiosqlite:////abs/x.db"
    )
    assert normalize_database_url("postgres://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    assert normalize_database_url("postgresql://u@h:5433/db") == "postgresql+asyncpg://u@h:5433/db"
    assert normalize_database_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalize_database_url("postgres://u@h/db?sslmode=require").endswith("?ssl=require")
    for bad in ("mysql://u:secret@h/db", "sqlite://", "sqlite:///:memory:", "nonsense", ""):
        with pytest.raises(ValueError, match="Accepted forms") as info:
            normalize_database_url(bad)
        assert "secret" not in str(info.value)
        assert "postgresql+asyncpg://" in str(info.value)
        assert "sqlite+aiosqlite://" in str(info.value)


def test_build_store_selects_backend() -> None:
    assert isinstance(build_store("memory://"), MemoryStore)
    sqlite_store = build_store("sqlite:///x.db")
    assert isinstance(sqlite_store, SQLStore) and sqlite_store.url.startswith("sqlite+aiosqlite")
    pg_store = build_store("postgres://u@h/db")
    assert isinstance(pg_store, SQLStore) and pg_store.url.startswith("postgresql+asyncpg")
    with pytest.raises(ValueError):
        build_store("mongodb://h/db")


# -- SQL only --------------------------------------------------------------------------


async def test_restart_keeps_data(sql_store_backend: StoreBackend) -> None:
    first = await sql_store_backend.open()
    thread = await new_thread(first, title="survives")
    ids = await fill(first, thread, 3)
    await first.save_attachment(file_attachment(), ALICE)
    await first.close()

    second = await sql_store_backend.open()  # start() again on the existing database
    assert (await second.load_thread(thread.id, ALICE)).title == "survives"
    assert await all_item_ids(second, thread.id) == ids
    assert await second.load_attachment("atc_1", ALICE) == file_attachment()
    more = await fill(second, thread, 1)  # seq keeps increasing after a restart
    assert await all_item_ids(second, thread.id) == ids + more
    assert isinstance(second, SQLStore)
    async with second.engine.connect() as conn:
        versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    assert [v[0] for v in versions] == [HEAD_REVISION]


async def test_reads_go_chunk_by_chunk(sql_store_backend: StoreBackend) -> None:
    """A download holds one chunk and no connection between chunks; a file replaced or
    deleted meanwhile fails the read instead of ending it short."""
    store = await sql_store_backend.open()
    assert isinstance(store, SQLStore)
    data = os.urandom(3 * CHUNK_BYTES)
    await uploaded(store, data, "atc_deleted")
    await uploaded(store, data, "atc_replaced", "up_old")
    readers = {}
    for id_ in ("atc_deleted", "atc_replaced"):
        readers[id_] = store.read_chunks(id_, ALICE)
        assert await anext(readers[id_]) == data[:CHUNK_BYTES]
    assert store.connections_in_use() == 0
    await store.delete_attachment("atc_deleted", ALICE)
    await uploaded(store, b"new", "atc_replaced", "up_new", save=False)
    for reader in readers.values():
        with pytest.raises(NotFoundError, match="changed while read"):
            async for _ in reader:
                pass
    assert await read_all(store, "atc_replaced") == b"new"


KILLED_MID_UPLOAD = """
import asyncio, os, signal, sys
from chatkit.types import FileAttachment
from app.context import RequestContext
from app.stores import open_store

async def main() -> None:
    store = await open_store(sys.argv[1])
    alice = RequestContext(user_id="alice")
    await store.save_attachment(FileAttachment(id="atc_k", name="k.pdf", mime_type="a/b"), alice)
    for seq in range(2):
        await store.write_chunk("atc_k", "up_k", seq, b"k" * 1000, alice)
    os.kill(os.getpid(), signal.SIGKILL)  # mid-upload: finish_upload never runs

asyncio.run(main())
"""


async def test_kill_9_mid_upload_leaves_nothing_readable(
    sql_store_backend: StoreBackend,
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_MID_UPLOAD, sql_store_backend.url, cwd=BACKEND_DIR
    )
    assert await asyncio.wait_for(child.wait(), timeout=60) == -9
    store = await sql_store_backend.open()
    assert await stored_chunks(store) == {("up_k", 0), ("up_k", 1)}  # each chunk committed
    assert (await store.attachment_upload("atc_k", ALICE)).upload_id is None
    with pytest.raises(NotFoundError):
        await read_all(store, "atc_k")
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert await store.sweep_orphan_attachments(later) == ["atc_k"]
    assert await stored_chunks(store) == set()


async def test_concurrent_starts_do_not_race(sql_store_backend: StoreBackend) -> None:
    # Two processes booting at once on an empty database (advisory lock on Postgres).
    stores = [sql_store_backend.build() for _ in range(3)]
    await asyncio.gather(*(s.start() for s in stores))
    thread = await new_thread(stores[0])
    assert await stores[2].load_thread(thread.id, ALICE) == thread


async def test_start_waits_for_another_process_migrating(
    sql_store_backend: StoreBackend,
) -> None:
    """While another process holds the database's migration lock, start() waits for it."""
    store = sql_store_backend.build()
    url = make_url(sql_store_backend.url)
    if sql_store_backend.kind == "postgres":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        other = await asyncpg.connect(dsn)
        transaction = other.transaction()
        await transaction.start()
        await other.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)

        async def release() -> None:
            await transaction.rollback()
            await other.close()
    else:
        assert url.database
        raw = sqlite3.connect(url.database, isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")  # what a migrating process holds

        async def release() -> None:
            raw.rollback()
            raw.close()

    starting = asyncio.create_task(store.start())
    await asyncio.sleep(0.5)
    assert not starting.done()
    await release()
    await asyncio.wait_for(starting, timeout=10)
    thread = await new_thread(store)
    assert await store.load_thread(thread.id, ALICE) == thread


async def test_migrated_schema_matches_metadata(sql_store_backend: StoreBackend) -> None:
    store = await sql_store_backend.open()
    assert isinstance(store, SQLStore)

    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = build_store(f"sqlite:///{tmp_path / 'p.db'}")
    assert isinstance(store, SQLStore)
    try:
        await store.start()
        async with store.engine.connect() as conn:
            assert (await conn.scalar(text("PRAGMA journal_mode"))) == "wal"
            assert (await conn.scalar(text("PRAGMA foreign_keys"))) == 1
            assert (await conn.scalar(text("PRAGMA busy_timeout"))) == 5000
    finally:
        await store.close()


@asynccontextmanager
async def sqlite_store(path: Path) -> AsyncIterator[SQLStore]:
    store = build_store(f"sqlite:///{path}")
    assert isinstance(store, SQLStore)
    try:
        await store.start()
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def write_lock_of_another_process(path: Path) -> AsyncIterator[None]:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # what another server process writing holds
    try:
        yield
    finally:
        other.rollback()
        other.close()


async def test_sqlite_waits_for_another_process_with_the_loop_free(tmp_path: Path) -> None:
    """Queries run on the event loop: waiting on the write lock must not block it."""
    async with sqlite_store(tmp_path / "w.db") as store:
        thread = await new_thread(store)
        item = user_msg(store, thread, "written once the lock is free")
        async with write_lock_of_another_process(tmp_path / "w.db"):
            writing = asyncio.create_task(store.add_thread_item(thread.id, item, ALICE))
            started = asyncio.get_running_loop().time()
            for _ in range(30):  # the loop keeps ticking while the write waits
                await asyncio.sleep(0.01)
            assert asyncio.get_running_loop().time() - started < 2.0
            assert not writing.done()
            # Readers are not blocked by the writer (WAL).
            assert (await store.load_thread(thread.id, ALICE)).title == "t"
        await asyncio.wait_for(writing, timeout=5)
        assert await all_item_ids(store, thread.id) == [item.id]


async def test_sqlite_lock_held_too_long_fails_the_call_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.stores.sql.SQLITE_BUSY_TIMEOUT_MS", 200)
    async with sqlite_store(tmp_path / "t.db") as store:
        thread = await new_thread(store)
        item = user_msg(store, thread)
        async with write_lock_of_another_process(tmp_path / "t.db"):
            with pytest.raises(OperationalError, match="database is locked"):
                await asyncio.wait_for(store.add_thread_item(thread.id, item, ALICE), 5)
        assert store.connections_in_use() == 0
        await store.add_thread_item(thread.id, item, ALICE)  # and works once it is free
        assert await all_item_ids(store, thread.id) == [item.id]


async def test_concurrent_writers(sql_store_backend: StoreBackend) -> None:
    """50 concurrent streams writing (and reading) at once: no 'database is locked'.

    Two stores on the same database stand in for two server processes: they share no
    lock and no pool, only the database.
    """
    first, second = await sql_store_backend.open(), await sql_store_backend.open()
    thread_list = [await new_thread(first, title=f"t{i}") for i in range(10)]
    per_task = 10

    async def stream(task: int) -> list[str]:
        store = first if task % 2 else second
        thread = thread_list[task % len(thread_list)]
        written = []
        for i in range(per_task):
            item = assistant_msg(store, thread, f"{task}-{i}")
            await store.add_thread_item(thread.id, item, ALICE)
            if i % 4 == 0:
                await store.add_thread_item(thread.id, item, ALICE)  # duplicate add
                await store.save_thread(thread, ALICE)
                await store.load_thread_items(thread.id, None, 5, "desc", ALICE)
            written.append(item.id)
        return written

    results = await asyncio.gather(*(stream(t) for t in range(50)))

    for index, thread in enumerate(thread_list):
        stored = await all_item_ids(first, thread.id)
        assert len(stored) == len(set(stored)) == 5 * per_task
        for task in range(index, 50, len(thread_list)):
            mine = set(results[task])
            assert [i for i in stored if i in mine] == results[task]  # each stream in order
    assert isinstance(first, SQLStore)
    async with first.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(items)) == 50 * per_task
        assert await conn.scalar(select(func.count()).select_from(threads)) == len(thread_list)


async def test_page_queries_use_the_composite_indexes(sql_store_backend: StoreBackend) -> None:
    """A page is an index range read in seq order: its cost does not grow with the table."""
    store = await sql_store_backend.open()
    assert isinstance(store, SQLStore)
    # A realistic shape for the planner, inserted in bulk: 1000 threads over 100 users,
    # their items interleaved as concurrent conversations write them.
    now = datetime.now(UTC)
    thread_rows = [
        {
            "id": f"thr_{n}",
            "user_id": f"user_{n % 100}",
            "title": None,
            "created_at": now,
            "data": ThreadMetadata(id=f"thr_{n}", created_at=now).model_dump_json(),
        }
        for n in range(1000)
    ]
    item_rows = [
        {
            "id": f"msg_{i}_{t['id']}",
            "thread_id": t["id"],
            "user_id": t["user_id"],
            "type": "end_of_turn",
            "created_at": now,
            "data": "{}",
        }
        for i in range(10)
        for t in thread_rows
    ]
    async with store.engine.begin() as conn:
        await conn.execute(threads.insert(), thread_rows)
        await conn.execute(items.insert(), item_rows)

    queries = {
        "ix_chatkit_items_thread_id_user_id_seq": [
            items_page_query("thr_7", "user_7", None, 5, "asc"),
            items_page_query("thr_7", "user_7", 5000, 5, "asc"),
            items_page_query("thr_7", "user_7", 5000, 5, "desc"),
        ],
        "ix_chatkit_threads_user_id_seq": [
            threads_page_query("user_7", None, 5, "desc"),
            threads_page_query("user_7", 500, 5, "asc"),
        ],
    }
    engine = store.engine
    postgres = engine.dialect.name == "postgresql"
    async with engine.connect() as conn:
        if postgres:
            await conn.execute(text("ANALYZE"))
            # Tiny tables make full scans and bitmap+sort cheap; rule them out so the plan
            # shows whether the index alone can deliver the page in order.
            for knob in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                await conn.execute(text(f"SET LOCAL {knob} = off"))
        for index, statements in queries.items():
            for stmt in statements:
                sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
                explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
                rows = (await conn.exec_driver_sql(explain + sql)).all()
                plan = "\n".join(str(row[-1]) for row in rows)
                assert index in plan, plan
                # Rows come out of the index in seq order: no sort, no table scan,
                # and the keyset bound is part of the index condition, not a filter.
                assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
                assert not re.search(r"\bSCAN chatkit_", plan), plan
                assert "Seq Scan" not in plan and "Filter" not in plan, plan
                if re.search(r"seq [<>] \d", sql):
                    bound = r"Index Cond: .*seq [<>]" if postgres else r"seq[<>]\?\)"
                    assert re.search(bound, plan), plan


async def test_attachment_queries_use_their_indexes(sql_store_backend: StoreBackend) -> None:
    """A chunk read is a key lookup, and the sweep reads only what its cutoff selects:
    neither scans every attachment or chunk, so their cost does not grow with the files
    kept."""
    store = await sql_store_backend.open()
    assert isinstance(store, SQLStore)
    old = datetime.now(UTC) - timedelta(days=30)
    attachment_rows = [
        {
            "id": f"atc_{n}",
            "user_id": f"user_{n % 100}",
            "data": "{}",
            "thread_id": f"thr_{n}",
            "created_at": old + timedelta(minutes=n),
            "upload_id": f"up_{n}",
            "size": 1,
            "content_type": "image/png",
        }
        for n in range(2000)
    ]
    chunk_rows = [
        {
            "upload_id": f"up_{n}",
            "seq": seq,
            "attachment_id": f"atc_{n}",
            "created_at": old + timedelta(minutes=n),
            "data": b"x",
        }
        for n in range(2000)
        for seq in range(3)
    ]
    async with store.engine.begin() as conn:
        await conn.execute(attachments.insert(), attachment_rows)
        await conn.execute(attachment_chunks.insert(), chunk_rows)

    cutoff = old + timedelta(minutes=5)
    # statement -> what its plan shows on (SQLite, PostgreSQL)
    queries = [
        (
            chunk_query("atc_7", "up_7", 1),
            (r"\(upload_id=\? AND seq=\?\)", "pk_chatkit_attachment_chunks"),
        ),
        (orphans_delete(cutoff), ("ix_chatkit_attachments_thread_id_created_at",) * 2),
        (unfinished_chunks_delete(cutoff), ("ix_chatkit_attachment_chunks_created_at",) * 2),
    ]
    engine = store.engine
    postgres = engine.dialect.name == "postgresql"
    async with engine.connect() as conn:
        if postgres:
            await conn.execute(text("ANALYZE"))
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
        for stmt, expected in queries:
            sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
            explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            rows = (await conn.exec_driver_sql(explain + sql)).all()
            plan = "\n".join(str(row[-1]) for row in rows)
            assert re.search(expected[postgres], plan), plan
            # No full scan; the NOT EXISTS probe of attachments goes by primary key.
            assert "Seq Scan" not in plan and not re.search(r"\bSCAN chatkit_", plan), plan


def test_alembic_cli_upgrade(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=BACKEND_DIR,
        env=env,
        check=True,
        capture_output=True,
    )
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {threads.name, items.name, "chatkit_attachments"} <= tables
    assert version == [(HEAD_REVISION,)]
