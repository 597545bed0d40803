"""The ChatKit server: runs the agent on the recent conversation and streams it back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

from agents import Agent, Runner
from chatkit.agents import AgentContext, stream_agent_response
from chatkit.server import ChatKitServer, NonStreamingResult, StreamingResult
from chatkit.store import AttachmentStore, Store
from chatkit.types import (
    AttachmentCreateParams,
    ChatKitReq,
    FeedbackKind,
    Page,
    ProgressUpdateEvent,
    ThreadItem,
    ThreadMetadata,
    ThreadStreamEvent,
    UserMessageItem,
    UserMessageTextContent,
    is_streaming_req,
)
from pydantic import TypeAdapter

from app.context import RequestContext
from app.history import HistoryConverter
from app.provider_errors import to_stream_error
from app.providers import ResolvedProvider
from app.streaming import with_own_message_ids

logger = logging.getLogger(__name__)

TITLE_LENGTH = 60

# Built once per process: chatkit's own `process()` builds this adapter for the whole
# request union on every request, milliseconds of schema building each time
# (openai-chatkit 1.6.5; measured in the template repository's docs/BENCHMARKS.md).
REQUEST_ADAPTER: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)


class AttachmentsDisabled(AttachmentStore[RequestContext]):
    """Uploads are off until you add storage for the files (see chatkit's AttachmentStore)."""

    async def create_attachment(
        self, input: AttachmentCreateParams, context: RequestContext
    ) -> Any:
        raise NotImplementedError("File attachments are not enabled on this server.")

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        raise NotImplementedError("File attachments are not enabled on this server.")


def title_from(message: UserMessageItem) -> str | None:
    text = " ".join(
        part.text for part in message.content if isinstance(part, UserMessageTextContent)
    )
    text = " ".join(text.split())
    if not text:
        return None
    return text if len(text) <= TITLE_LENGTH else text[: TITLE_LENGTH - 1].rstrip() + "…"


class LoadedHistory:
    """The store as `stream_agent_response` sees it during one turn.

    It starts by loading the thread's last two items (to resume a workflow); `respond`
    has just loaded the recent items, so that first look is served from them, saving a
    store round trip per turn. Everything else goes to the store.
    """

    def __init__(
        self,
        store: Store[RequestContext],
        thread_id: str,
        oldest_first: list[ThreadItem],
        whole_thread: bool,
    ) -> None:
        self._store = store
        self._thread_id = thread_id
        self._newest_first: list[ThreadItem] | None = oldest_first[::-1]
        self._whole_thread = whole_thread

    async def load_thread_items(
        self, thread_id: str, after: str | None, limit: int, order: str, context: RequestContext
    ) -> Page[ThreadItem]:
        newest, self._newest_first = self._newest_first, None  # served once, then the store
        if (
            newest is not None
            and (thread_id, after, order) == (self._thread_id, None, "desc")
            and 0 < limit
            and (limit < len(newest) or self._whole_thread)
        ):
            data = newest[:limit]
            has_more = len(newest) > limit
            return Page(data=data, has_more=has_more, after=data[-1].id if has_more else None)
        return await self._store.load_thread_items(thread_id, after, limit, order, context)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class ChatServer(ChatKitServer[RequestContext]):
    def __init__(
        self,
        store: Store[RequestContext],
        agent: Agent[AgentContext[Any]],
        provider: ResolvedProvider,
        history_limit: int,
    ) -> None:
        super().__init__(store, attachment_store=AttachmentsDisabled())
        self.agent = agent
        self.provider = provider
        self.history_limit = history_limit
        self.converter = HistoryConverter()
        self._cleanups: set[asyncio.Task[None]] = set()

    async def process(
        self, request: str | bytes | bytearray, context: RequestContext
    ) -> StreamingResult | NonStreamingResult:
        """chatkit's `process()`, parsing with the adapter built once per process."""
        parsed = REQUEST_ADAPTER.validate_json(request)
        if is_streaming_req(parsed):
            return StreamingResult(self._process_streaming(parsed, context))
        return NonStreamingResult(await self._process_non_streaming(parsed, context))

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if thread.title is None and input_user_message is not None:
            # The SDK saves the thread and tells the client when it changed.
            thread.title = title_from(input_user_message)

        history = await self.recent_items(thread, context)
        agent_context = AgentContext[RequestContext](
            thread=thread,
            store=cast(
                Store[RequestContext],
                LoadedHistory(self.store, thread.id, history, len(history) < self.history_limit),
            ),
            request_context=context,
        )
        result = Runner.run_streamed(
            self.agent, await self.converter.to_agent_input(history), context=agent_context
        )
        events = stream_agent_response(agent_context, result)
        reply_started = False
        try:
            async for event in with_own_message_ids(
                events, lambda: self.store.generate_item_id("message", thread, context)
            ):
                reply_started = True
                yield event
        except Exception as error:
            logger.warning(
                "model call failed: provider=%s error=%s",
                self.provider.provider.name,
                type(error).__name__,
            )
            raise to_stream_error(error, self.provider, reply_started=reply_started) from error
        finally:
            # A dropped client cancels this generator; stop the model run with it.
            result.cancel()
            # When the stream ends early (a dropped client, a provider error),
            # stream_agent_response leaves a task waiting on the context's event queue
            # forever: one leaked task per such turn (openai-chatkit 1.6.5). An inert
            # event lets it finish; nobody reads it.
            await agent_context.stream(ProgressUpdateEvent(text=""))

    async def recent_items(
        self, thread: ThreadMetadata, context: RequestContext
    ) -> list[ThreadItem]:
        """The last `history_limit` items, oldest first, ending with the new message.

        `order="asc"` with a limit would return the oldest items: once a thread is
        longer than the limit, the model would never see the new message.
        """
        page = await self.store.load_thread_items(
            thread.id, None, self.history_limit, "desc", context
        )
        return list(reversed(page.data))

    async def handle_stream_cancelled(
        self, thread: ThreadMetadata, pending_items: list[ThreadItem], context: RequestContext
    ) -> None:
        """chatkit's cleanup for a dropped stream, run to its end.

        It stores the partial reply and a hidden note that the user stopped it, so the
        next turn does not carry on from the partial reply. Starlette cancels every await
        of a disconnected response, so run in place it stops at its first store call.
        """
        cleanup = asyncio.ensure_future(
            super().handle_stream_cancelled(thread, pending_items, context)
        )
        self._cleanups.add(cleanup)
        cleanup.add_done_callback(self._cleanup_done)
        await asyncio.shield(cleanup)

    def _cleanup_done(self, cleanup: asyncio.Task[None]) -> None:
        self._cleanups.discard(cleanup)
        if not cleanup.cancelled() and cleanup.exception() is not None:
            logger.warning("saving a dropped stream failed: %r", cleanup.exception())

    async def add_feedback(
        self,
        thread_id: str,
        item_ids: list[str],
        feedback: FeedbackKind,
        context: RequestContext,
    ) -> None:
        # Only the thread's owner may rate its items; NotFoundError otherwise.
        for item_id in item_ids:
            await self.store.load_item(thread_id, item_id, context)
        logger.info("feedback %s on %d item(s) of %s", feedback, len(item_ids), thread_id)
