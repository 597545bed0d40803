"""Collision-safe ids for threads and items, shared by every store."""

from __future__ import annotations

import uuid

from chatkit.store import _ID_PREFIXES, StoreItemType
from chatkit.types import ThreadMetadata

from app.context import RequestContext


def new_id(item_type: StoreItemType) -> str:
    """``<sdk prefix>_<32 hex chars>``.

    The SDK default keeps only 8 hex chars (32 bits): by the birthday bound that
    collides around the millionth row, and ids are unique keys in our tables.
    """
    return f"{_ID_PREFIXES[item_type]}_{uuid.uuid4().hex}"


class FullUuidIds:
    """Mixin overriding ``Store.generate_*_id``; list it before ``Store`` in the bases."""

    def generate_thread_id(self, context: RequestContext) -> str:
        return new_id("thread")

    def generate_item_id(
        self, item_type: StoreItemType, thread: ThreadMetadata, context: RequestContext
    ) -> str:
        return new_id(item_type)

    def generate_attachment_id(self, mime_type: str, context: RequestContext) -> str:
        # Not part of Store, but AttachmentStore implementations can delegate here.
        return new_id("attachment")
