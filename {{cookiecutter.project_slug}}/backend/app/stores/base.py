"""What every application store offers on top of chatkit's ``Store``: ids, lifecycle, health."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal, Protocol, TypeVar

from chatkit.store import Store
from chatkit.types import Attachment, Page, ThreadItem, ThreadMetadata
from pydantic import TypeAdapter

from app.context import RequestContext
from app.sdk_fixes.full_uuid_ids import FullUuidIds

Order = Literal["asc", "desc"]

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


class AppStore(FullUuidIds, Store[RequestContext], ABC):
    """A chatkit ``Store`` scoped by ``RequestContext.user_id``, with a lifecycle.

    Call ``await start()`` once before use and ``await close()`` on shutdown.
    """

    @abstractmethod
    async def start(self) -> None:
        """Prepare the backing storage (create/migrate the schema). Idempotent."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the backing storage is unreachable (for ``GET /health``)."""
