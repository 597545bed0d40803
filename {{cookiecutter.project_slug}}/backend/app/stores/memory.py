"""In-process store: for ``memory://``, tests and demos. Data is lost on restart.

Same semantics as ``SQLStore`` (the contract tests run against both): records are
kept as parsed copies of their JSON, so callers mutating returned models never
change stored state, and pages are cut with bisect on a per-owner sorted ``seq`` list.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import count

from chatkit.store import NotFoundError
from chatkit.types import Attachment, FeedbackKind, Page, ThreadItem, ThreadMetadata

from app.context import RequestContext
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
    check_limit,
    check_order,
    feedback_item_ids,
    item_json,
    page_of,
    thread_json,
)


@dataclass
class _SeqIndex:
    """Ids ordered by insertion ``seq``; the in-memory twin of an ``(owner, seq)`` index."""

    seqs: list[int] = field(default_factory=list)
    ids: dict[int, str] = field(default_factory=dict)

    def add(self, seq: int, id_: str) -> None:
        insort(self.seqs, seq)
        self.ids[seq] = id_

    def remove(self, seq: int) -> None:
        i = bisect_left(self.seqs, seq)
        if i < len(self.seqs) and self.seqs[i] == seq:
            del self.seqs[i]
            del self.ids[seq]

    def page(self, after_seq: int | None, limit: int, order: Order) -> tuple[list[str], bool]:
        if order == "asc":
            start = 0 if after_seq is None else bisect_right(self.seqs, after_seq)
            window = self.seqs[start : start + limit + 1]
        else:
            end = len(self.seqs) if after_seq is None else bisect_left(self.seqs, after_seq)
            window = self.seqs[max(0, end - limit - 1) : end][::-1]
        return [self.ids[s] for s in window[:limit]], len(window) > limit


@dataclass
class _ThreadRow:
    user_id: str
    seq: int
    json: str


@dataclass
class _ItemRow:
    user_id: str
    thread_id: str
    seq: int
    json: str


@dataclass
class _AttachmentRow:
    user_id: str
    json: str
    upload: UploadInfo


@dataclass(frozen=True)
class _FeedbackRow:
    user_id: str
    thread_id: str
    kind: FeedbackKind
    rated_at: datetime


@dataclass(frozen=True)
class _Chunk:
    attachment_id: str
    created_at: datetime
    data: bytes


class MemoryStore(AppStore):
    def __init__(self) -> None:
        self._seq = count(1)
        self._threads: dict[str, _ThreadRow] = {}
        self._threads_by_user: dict[str, _SeqIndex] = {}
        self._items: dict[str, _ItemRow] = {}
        self._items_by_thread: dict[str, _SeqIndex] = {}
        self._attachments: dict[str, _AttachmentRow] = {}
        self._chunks: dict[str, dict[int, _Chunk]] = {}  # upload_id -> seq -> chunk
        self._counters: dict[tuple[str, int], tuple[int, datetime]] = {}  # -> count, expiry
        # item_id -> the rating; an item has one owner and thread, so its id is the key.
        self._feedback: dict[str, _FeedbackRow] = {}

    # Every method body below is synchronous, so each call is atomic on the event loop.

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    def _owned_thread(self, thread_id: str, context: RequestContext) -> _ThreadRow:
        row = self._threads.get(thread_id)
        if row is None or row.user_id != context.user_id:
            raise NotFoundError(f"Thread {thread_id} not found")
        return row

    async def load_thread(self, thread_id: str, context: RequestContext) -> ThreadMetadata:
        return ThreadMetadata.model_validate_json(self._owned_thread(thread_id, context).json)

    async def save_thread(self, thread: ThreadMetadata, context: RequestContext) -> None:
        row = self._threads.get(thread.id)
        if row is None:
            seq = next(self._seq)
            self._threads[thread.id] = _ThreadRow(context.user_id, seq, thread_json(thread))
            self._threads_by_user.setdefault(context.user_id, _SeqIndex()).add(seq, thread.id)
        elif row.user_id == context.user_id:
            row.json = thread_json(thread)
        else:
            raise NotFoundError(f"Thread {thread.id} not found")

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: RequestContext
    ) -> Page[ThreadMetadata]:
        after_seq = None if after is None else self._owned_thread(after, context).seq
        index = self._threads_by_user.get(context.user_id, _SeqIndex())
        ids, has_more = index.page(after_seq, check_limit(limit), check_order(order))
        data = [ThreadMetadata.model_validate_json(self._threads[i].json) for i in ids]
        return page_of(data, has_more)

    async def delete_thread(self, thread_id: str, context: RequestContext) -> None:
        row = self._owned_thread(thread_id, context)
        for item_id in self._items_by_thread.pop(thread_id, _SeqIndex()).ids.values():
            del self._items[item_id]
            self._feedback.pop(item_id, None)
        del self._threads[thread_id]
        self._threads_by_user[row.user_id].remove(row.seq)
        gone = [
            id_
            for id_, attachment in self._attachments.items()
            if attachment.upload.thread_id == thread_id and attachment.user_id == row.user_id
        ]
        self._drop_attachments(gone)
        await self._attachments_deleted(gone)

    def _owned_item(self, thread_id: str, item_id: str, context: RequestContext) -> _ItemRow:
        row = self._items.get(item_id)
        if row is None or row.user_id != context.user_id or row.thread_id != thread_id:
            raise NotFoundError(f"Item {item_id} not found in thread {thread_id}")
        return row

    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: RequestContext,
    ) -> Page[ThreadItem]:
        self._owned_thread(thread_id, context)
        after_seq = None if after is None else self._owned_item(thread_id, after, context).seq
        index = self._items_by_thread.get(thread_id, _SeqIndex())
        ids, has_more = index.page(after_seq, check_limit(limit), check_order(order))
        data = [self._loaded_item(self._items[i].json, context) for i in ids]
        return page_of(data, has_more)

    def _loaded_item(self, data: str, context: RequestContext) -> ThreadItem:
        return self._presented_item(ITEM_ADAPTER.validate_json(data), context)

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: RequestContext
    ) -> None:
        # The SDK can add the same item twice, so this is the same upsert as save_item.
        self._upsert_item(thread_id, item, context)

    async def save_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        self._upsert_item(thread_id, item, context)

    def _upsert_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        self._owned_thread(thread_id, context)
        row = self._items.get(item.id)
        if row is None:
            seq = next(self._seq)
            self._items[item.id] = _ItemRow(context.user_id, thread_id, seq, item_json(item))
            self._items_by_thread.setdefault(thread_id, _SeqIndex()).add(seq, item.id)
        elif row.user_id == context.user_id and row.thread_id == thread_id:
            row.json = item_json(item)
        else:
            raise NotFoundError(f"Item {item.id} not found in thread {thread_id}")

    async def load_item(self, thread_id: str, item_id: str, context: RequestContext) -> ThreadItem:
        return self._loaded_item(self._owned_item(thread_id, item_id, context).json, context)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: RequestContext
    ) -> None:
        self._owned_thread(thread_id, context)
        row = self._items.get(item_id)
        # A missing item in an owned thread is a no-op: the SDK emits removals for
        # items it streamed but never persisted (guardrail tripwires).
        if row is not None and row.user_id == context.user_id and row.thread_id == thread_id:
            del self._items[item_id]
            self._items_by_thread[thread_id].remove(row.seq)
            self._feedback.pop(item_id, None)

    async def save_feedback(
        self,
        thread_id: str,
        item_ids: Sequence[str],
        kind: FeedbackKind,
        context: RequestContext,
    ) -> None:
        rated = feedback_item_ids(item_ids)
        self._owned_thread(thread_id, context)
        for item_id in rated:  # every one checked before any is written
            self._owned_item(thread_id, item_id, context)
        now = datetime.now(UTC)
        for item_id in rated:
            self._feedback[item_id] = _FeedbackRow(context.user_id, thread_id, kind, now)

    async def load_feedback(self, thread_id: str, context: RequestContext) -> list[Feedback]:
        self._owned_thread(thread_id, context)  # so its items are the caller's too
        item_ids = sorted(self._items_by_thread.get(thread_id, _SeqIndex()).ids.values())
        rows = [(item_id, self._feedback.get(item_id)) for item_id in item_ids]
        return [Feedback(item_id, row.kind, row.rated_at) for item_id, row in rows if row]

    def _owned_attachment(self, attachment_id: str, context: RequestContext) -> _AttachmentRow:
        row = self._attachments.get(attachment_id)
        if row is None or row.user_id != context.user_id:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        return row

    def _drop_attachments(self, attachment_ids: list[str]) -> None:
        gone = set(attachment_ids)
        for id_ in gone:
            del self._attachments[id_]
        for upload_id, chunks in list(self._chunks.items()):
            if any(chunk.attachment_id in gone for chunk in chunks.values()):
                del self._chunks[upload_id]

    async def save_attachment(self, attachment: Attachment, context: RequestContext) -> None:
        row = self._attachments.get(attachment.id)
        if row is None:
            upload = UploadInfo(
                attachment.id, None, None, None, attachment.thread_id, datetime.now(UTC)
            )
            self._attachments[attachment.id] = _AttachmentRow(
                context.user_id, attachment_json(attachment), upload
            )
            return
        bound = row.upload.thread_id
        if row.user_id != context.user_id or (
            bound is not None and attachment.thread_id not in (None, bound)
        ):
            raise NotFoundError(f"Attachment {attachment.id} not found")
        row.json = attachment_json(attachment)
        row.upload = replace(row.upload, thread_id=bound or attachment.thread_id)

    async def load_attachment(self, attachment_id: str, context: RequestContext) -> Attachment:
        attachment = ATTACHMENT_ADAPTER.validate_json(
            self._owned_attachment(attachment_id, context).json
        )
        return self._presented(attachment, context)

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        self._owned_attachment(attachment_id, context)
        self._drop_attachments([attachment_id])
        await self._attachments_deleted([attachment_id])

    # -- attachment uploads ------------------------------------------------------------

    async def attachment_upload(self, attachment_id: str, context: RequestContext) -> UploadInfo:
        return self._owned_attachment(attachment_id, context).upload

    async def write_chunk(
        self, attachment_id: str, upload_id: str, seq: int, data: bytes, context: RequestContext
    ) -> None:
        check_chunk(seq, data)
        self._owned_attachment(attachment_id, context)
        chunks = self._chunks.setdefault(upload_id, {})
        existing = chunks.get(seq)
        if existing is not None and existing.attachment_id != attachment_id:
            raise NotFoundError(f"Attachment {attachment_id} not found")  # another's upload id
        chunks[seq] = _Chunk(attachment_id, datetime.now(UTC), bytes(data))

    async def finish_upload(
        self,
        attachment: Attachment,
        upload_id: str,
        size: int,
        content_type: str,
        context: RequestContext,
    ) -> None:
        row = self._owned_attachment(attachment.id, context)
        if row.upload.thread_id is not None:
            raise AttachmentBoundError(f"Attachment {attachment.id} is part of a message")
        previous = row.upload.upload_id
        if previous is not None and previous != upload_id:
            self._chunks.pop(previous, None)
        row.json = attachment_json(attachment)
        row.upload = replace(row.upload, upload_id=upload_id, size=size, content_type=content_type)

    async def discard_upload(self, upload_id: str) -> None:
        if not any(row.upload.upload_id == upload_id for row in self._attachments.values()):
            self._chunks.pop(upload_id, None)

    async def read_chunks(
        self, attachment_id: str, context: RequestContext
    ) -> AsyncIterator[bytes]:
        upload_id = self._owned_attachment(attachment_id, context).upload.upload_id
        if upload_id is None:
            raise NotFoundError(f"Attachment {attachment_id} not uploaded")
        # A snapshot: a re-upload finishing meanwhile does not cut this read short.
        chunks = self._chunks.get(upload_id, {})
        seq = 0
        while (chunk := chunks.get(seq)) is not None and chunk.attachment_id == attachment_id:
            yield chunk.data
            seq += 1

    async def sweep_orphan_attachments(self, older_than: datetime) -> list[str]:
        older_than = as_utc(older_than)
        gone = [
            id_
            for id_, row in self._attachments.items()
            if row.upload.thread_id is None and row.upload.created_at < older_than
        ]
        self._drop_attachments(gone)
        finished = {row.upload.upload_id for row in self._attachments.values()}
        for upload_id, chunks in list(self._chunks.items()):
            if upload_id in finished:
                continue
            for seq in [s for s, chunk in chunks.items() if chunk.created_at < older_than]:
                del chunks[seq]
            if not chunks:
                del self._chunks[upload_id]
        await self._attachments_deleted(gone)
        return gone

    async def add_to_counters(self, additions: Sequence[CounterAdd]) -> list[int]:
        values = []
        for add in additions:
            count, _ = self._counters.get((add.key, add.window_start), (0, add.expires_at))
            self._counters[(add.key, add.window_start)] = (
                count + add.amount,
                as_utc(add.expires_at),
            )
            values.append(count + add.amount)
        return values

    async def read_counter(self, key: str, window_start: int) -> int:
        return self._counters.get((key, window_start), (0, None))[0]

    async def delete_expired_counters(self, now: datetime) -> int:
        now = as_utc(now)
        gone = [k for k, (_, expires_at) in self._counters.items() if expires_at < now]
        for k in gone:
            del self._counters[k]
        return len(gone)
