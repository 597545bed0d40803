"""Run chatkit's cleanup for a dropped stream to its end.

Upstream (openai-chatkit 1.6.5): when the client hangs up, ``ChatKitServer`` calls
``handle_stream_cancelled``, which stores the partial reply and a hidden note that the
user stopped it (so the next turn does not carry on from the partial reply). Under
Starlette (anyio) every await of a disconnected request is cancelled again, so the
cleanup stops at its first store call and saves nothing. Here it runs in a task of its
own, shielded. No upstream issue found.

Cost: one task per dropped stream; without it the partial reply is lost and the model
continues the stopped answer on the next turn.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from chatkit.server import ChatKitServer
from chatkit.types import ThreadItem, ThreadMetadata

TContext = TypeVar("TContext")

logger = logging.getLogger(__name__)

_cleanups: set[asyncio.Task[None]] = set()


class SavesCancelledStreams(ChatKitServer[TContext]):
    async def handle_stream_cancelled(
        self, thread: ThreadMetadata, pending_items: list[ThreadItem], context: TContext
    ) -> None:
        cleanup = asyncio.ensure_future(
            super().handle_stream_cancelled(thread, pending_items, context)
        )
        _cleanups.add(cleanup)
        cleanup.add_done_callback(_cleanup_done)
        await asyncio.shield(cleanup)


def _cleanup_done(cleanup: asyncio.Task[None]) -> None:
    _cleanups.discard(cleanup)
    if not cleanup.cancelled() and cleanup.exception() is not None:
        logger.warning("saving a dropped stream failed: %r", cleanup.exception())
