"""Collision-safe ids for threads, items and attachments, shared by every store.

Upstream (openai-chatkit 1.6.5): ``Store.generate_*_id`` keep 8 hex characters of a
uuid4, 32 random bits. By the birthday bound that collides around the 77,000th id of a
kind (1 % chance at about 9,000), and ids are unique keys in our tables: a collision
makes ``save_item`` refuse a new message. These keep the SDK's prefixes and all 32 hex
characters (``_ID_PREFIXES`` is private: the canary checks it is still there).
No upstream issue found.

Cost: none measurable (24 more characters per id).
"""

from __future__ import annotations

import uuid

from chatkit.store import _ID_PREFIXES, StoreItemType
from chatkit.types import ThreadMetadata

from app.context import RequestContext


def new_id(item_type: StoreItemType) -> str:
    """``<sdk prefix>_<32 hex chars>``."""
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
