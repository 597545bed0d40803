"""What every application store offers on top of chatkit's ``Store``: ids, lifecycle, health."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar

from chatkit.store import NotFoundError, Store
from chatkit.types import (
    Attachment,
    FeedbackKind,
    Page,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
)
from pydantic import TypeAdapter

from app.context import RequestContext
from app.sdk_fixes.full_uuid_ids import FullUuidIds

logger = logging.getLogger(__name__)

Order = Literal["asc", "desc"]

# The most one write_chunk call stores (one row): big enough that a 20 MB file is 80
# rows, small enough that neither an upload nor a download holds more in memory.
CHUNK_BYTES = 256 * 1024

ITEM_ADAPTER: TypeAdapter[ThreadItem] = TypeAdapter(ThreadItem)
ATTACHMENT_ADAPTER: TypeAdapter[Attachment] = TypeAdapter(Attachment)

# The server hands save_thread a full ``Thread`` (with its items page) while streaming;
# only the metadata fields belong in the threads table.
_THREAD_FIELDS = frozenset(ThreadMetadata.model_fields)


def thread_json(thread: ThreadMetadata) -> str:
    return thread.model_dump_json(include=set(_THREAD_FIELDS))


def item_json(item: ThreadItem) -> str:
    return item.model_dump_json()


def attachment_json(attachment: Attachment) -> str:
    # No serialization context: the integration-only ``metadata`` field is kept.
    return attachment.model_dump_json()


def check_order(order: str) -> Order:
    if order == "asc":
        return "asc"
    if order == "desc":
        return "desc"
    raise ValueError(f"order must be 'asc' or 'desc', got {order!r}")


# The largest page a store returns. Clients page on with `after`; an unbounded limit
# would load a whole table and overflows the databases' 64-bit LIMIT (an HTTP 500).
MAX_PAGE_SIZE = 1000


def check_limit(limit: int) -> int:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return min(limit, MAX_PAGE_SIZE)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


Record = TypeVar("Record", bound=_HasId)


def page_of(data: Sequence[Record], has_more: bool) -> Page[Record]:
    """A page whose ``after`` is the cursor of the next one: None on the last page.

    chatkit's own stores do the same, and its server follows ``after`` only while
    ``has_more`` is true.
    """
    after = data[-1].id if has_more and data else None
    return Page(data=list(data), has_more=has_more, after=after)


@dataclass(frozen=True)
class UploadInfo:
    """An attachment's upload columns (the store's, beside ChatKit's JSON)."""

    attachment_id: str
    upload_id: str | None  # None until an upload finished
    size: int | None
    content_type: str | None  # the sniffed type
    thread_id: str | None  # the thread it was first sent in
    created_at: datetime  # UTC


class AttachmentBoundError(NotFoundError):
    """finish_upload on an attachment a message has named since: its bytes are fixed.

    A NotFoundError, so a caller that does not tell them apart answers 404.
    """


def check_chunk(seq: int, data: bytes) -> None:
    if seq < 0:
        raise ValueError(f"seq must be >= 0, got {seq}")
    if len(data) > CHUNK_BYTES:
        raise ValueError(f"a chunk holds at most {CHUNK_BYTES} bytes, got {len(data)}")


def as_utc(value: datetime) -> datetime:
    # SQLite hands DateTime columns back naive (they were written as UTC).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The most items one ``items.feedback`` request rates (ChatKit sends a reply's few):
# a bound on the rows one call writes, and on the SQL parameters of its statements.
MAX_FEEDBACK_ITEMS = 100


def feedback_item_ids(item_ids: Sequence[str]) -> list[str]:
    """The items to rate, each once and in order; ValueError (a 400) past the bound."""
    unique = list(dict.fromkeys(item_ids))
    if len(unique) > MAX_FEEDBACK_ITEMS:
        raise ValueError(
            f"feedback rates at most {MAX_FEEDBACK_ITEMS} items per request, got {len(unique)}"
        )
    return unique


def check_feedback_kind(kind: str) -> FeedbackKind:
    if kind == "positive":
        return "positive"
    if kind == "negative":
        return "negative"
    raise ValueError(f"feedback kind must be 'positive' or 'negative', got {kind!r}")


@dataclass(frozen=True, slots=True)
class Feedback:
    """The caller's latest rating of one item: its kind and when it was given (UTC)."""

    item_id: str
    kind: FeedbackKind
    rated_at: datetime


@dataclass(frozen=True, slots=True)
class CounterAdd:
    """One addition to a counter: its key, its window's start (Unix seconds), the amount
    and when the window's row may be deleted."""

    key: str
    window_start: int
    amount: int
    expires_at: datetime


class AppStore(FullUuidIds, Store[RequestContext], ABC):
    """A chatkit ``Store`` scoped by ``RequestContext.user_id``, with a lifecycle.

    Call ``await start()`` once before use and ``await close()`` on shutdown.

    Attachments: ``save_attachment`` upserts ChatKit's JSON and the thread the
    attachment was first sent in (a later save naming another thread is NotFoundError),
    and keeps the upload columns, which only ``finish_upload`` sets. The bytes are
    chunks of one upload id each; an attachment reads only the chunks of its finished
    upload id, so an upload that broke off (even by kill -9) is never readable, and
    the sweep deletes its chunks later.
    """

    # Set by the attachment service: called once rows are gone (delete_thread,
    # delete_attachment, the sweep) with their attachment ids, so stored objects go too.
    on_attachments_deleted: Callable[[list[str]], Awaitable[None]] | None = None

    async def _attachments_deleted(self, attachment_ids: list[str]) -> None:
        """Tell ``on_attachments_deleted``; never fails the delete (the rows are gone)."""
        callback = self.on_attachments_deleted
        if callback is None or not attachment_ids:
            return
        try:
            await callback(attachment_ids)
        except Exception as error:
            logger.warning("on_attachments_deleted failed: %r", error)

    # Set by the attachment service: how an attachment leaves the store for the caller
    # (load_attachment, and the attachments of loaded messages), e.g. its preview URL
    # signed afresh (app/attachments/urls.py).
    present_attachment: Callable[[Attachment, RequestContext], Attachment] | None = None

    def _presented(self, attachment: Attachment, context: RequestContext) -> Attachment:
        present = self.present_attachment
        return attachment if present is None else present(attachment, context)

    def _presented_item(self, item: ThreadItem, context: RequestContext) -> ThreadItem:
        if self.present_attachment is None or not isinstance(item, UserMessageItem):
            return item
        if not item.attachments:
            return item
        shown = [self._presented(attachment, context) for attachment in item.attachments]
        return item.model_copy(update={"attachments": shown})

    @abstractmethod
    async def start(self) -> None:
        """Prepare the backing storage (create/migrate the schema). Idempotent."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the backing storage is unreachable (for ``GET /health``)."""

    # -- attachment uploads ------------------------------------------------------------

    @abstractmethod
    async def attachment_upload(self, attachment_id: str, context: RequestContext) -> UploadInfo:
        """The attachment's upload columns; NotFoundError unless it is the caller's."""

    @abstractmethod
    async def write_chunk(
        self, attachment_id: str, upload_id: str, seq: int, data: bytes, context: RequestContext
    ) -> None:
        """Store chunk ``seq`` (0, 1, ...) of upload ``upload_id``, committed on its own.

        At most ``CHUNK_BYTES``. NotFoundError unless the attachment is the caller's.
        Nothing is readable until ``finish_upload``.
        """

    @abstractmethod
    async def finish_upload(
        self,
        attachment: Attachment,
        upload_id: str,
        size: int,
        content_type: str,
        context: RequestContext,
    ) -> None:
        """Make ``upload_id`` the attachment's bytes, in one transaction.

        Stores ``attachment`` as its JSON (the caller clears upload_descriptor) with the
        size and sniffed type, and deletes the chunks of the upload it replaces. Uploads
        still running keep theirs. NotFoundError unless the caller's;
        AttachmentBoundError once a message named it.
        """

    @abstractmethod
    async def discard_upload(self, upload_id: str) -> None:
        """Delete the chunks of a failed or aborted upload (no-op once it is finished)."""

    @abstractmethod
    def read_chunks(self, attachment_id: str, context: RequestContext) -> AsyncIterator[bytes]:
        """The finished upload's bytes, chunk by chunk (one chunk in memory at a time).

        NotFoundError (on first iteration) unless the attachment is the caller's and
        its upload finished.
        """

    @abstractmethod
    async def sweep_orphan_attachments(self, older_than: datetime) -> list[str]:
        """Delete, for every user, attachments created before ``older_than`` that no
        message names (thread_id NULL) with their chunks, and the chunks of unfinished
        uploads written before then. Returns the deleted attachment ids.

        Idempotent, and safe with several replicas sweeping at once. A naive
        ``older_than`` is taken as UTC.
        """

    # -- feedback (items.feedback) -----------------------------------------------------

    @abstractmethod
    async def save_feedback(
        self,
        thread_id: str,
        item_ids: Sequence[str],
        kind: FeedbackKind,
        context: RequestContext,
    ) -> None:
        """Record the caller's ``kind`` for each item, now: an upsert per (user, thread,
        item), so a second click replaces the kind and the time.

        All or nothing: NotFoundError, and nothing written, unless every item is in this
        thread of the caller's (and with no items, unless the thread is theirs).
        ValueError past ``MAX_FEEDBACK_ITEMS``. Deleting the item or its thread deletes
        its feedback.
        """

    @abstractmethod
    async def load_feedback(self, thread_id: str, context: RequestContext) -> list[Feedback]:
        """The caller's ratings in the thread, by item id; NotFoundError unless theirs."""

    # -- counters (app/limits/) --------------------------------------------------------

    async def add_to_counter(
        self, key: str, window_start: int, amount: int, expires_at: datetime
    ) -> int:
        """Add ``amount`` to the counter of ``key`` in the window starting at
        ``window_start`` (created at 0) and return its new value.

        Atomic: concurrent callers, in any process sharing the database, each see a
        different value. Counters are not scoped by user: ``key`` names whose they are.
        """
        (count,) = await self.add_to_counters([CounterAdd(key, window_start, amount, expires_at)])
        return count

    @abstractmethod
    async def add_to_counters(self, additions: Sequence[CounterAdd]) -> list[int]:
        """``add_to_counter`` for each addition, in one round trip to the database; the
        new values in the additions' order. Each addition is atomic on its own (not the
        batch as a whole); keys must differ. An amount of 0 reads a counter."""

    @abstractmethod
    async def read_counter(self, key: str, window_start: int) -> int:
        """The counter's value; 0 when it was never added to."""

    @abstractmethod
    async def delete_expired_counters(self, now: datetime) -> int:
        """Delete counters whose ``expires_at`` is before ``now``; how many went."""
