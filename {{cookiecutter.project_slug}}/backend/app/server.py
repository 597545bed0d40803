"""The ChatKit server: runs the agent on the recent conversation and streams it back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, cast

from agents import Agent, Runner
from chatkit.agents import AgentContext, stream_agent_response
from chatkit.store import AttachmentStore, Store
from chatkit.types import (
    AttachmentCreateParams,
    FeedbackKind,
    ThreadItem,
    ThreadMetadata,
    ThreadStreamEvent,
    UserMessageItem,
    UserMessageTextContent,
)

from app.context import RequestContext
from app.history import HistoryConverter
from app.provider_errors import to_stream_error
from app.providers import ResolvedProvider
from app.sdk_fixes.cancelled_streams import SavesCancelledStreams
from app.sdk_fixes.loaded_history import LoadedHistory
from app.sdk_fixes.message_ids import with_own_message_ids
from app.sdk_fixes.request_parsing import ParsesOnce
from app.sdk_fixes.stream_task_leak import release_queue_reader

logger = logging.getLogger(__name__)

TITLE_LENGTH = 60


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


class ChatServer(ParsesOnce[RequestContext], SavesCancelledStreams[RequestContext]):
    """chatkit's server with the fixes of app/sdk_fixes/ (see each base and call)."""

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
            await release_queue_reader(agent_context)

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
