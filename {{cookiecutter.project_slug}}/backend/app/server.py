"""The ChatKit server: runs the agent on the recent conversation and streams it back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

from agents import Agent, RunConfig, Runner
from chatkit.actions import Action
from chatkit.agents import AgentContext, stream_agent_response
from chatkit.store import Store
from chatkit.types import (
    ChatKitReq,
    ClientToolCallItem,
    FeedbackKind,
    SyncCustomActionResponse,
    ThreadItem,
    ThreadItemReplacedEvent,
    ThreadMetadata,
    ThreadsAddClientToolOutputReq,
    ThreadsCustomActionReq,
    ThreadsSyncCustomActionReq,
    ThreadStreamEvent,
    UserMessageItem,
    WidgetItem,
)

from app import extensions
from app.actions import check_action, run_action
from app.attachments.policy import AttachmentPolicy
from app.attachments.service import AttachmentService
from app.context import RequestContext
from app.history import HistoryConverter
from app.limits import LimitExceeded, Limits, trim_history
from app.model_choice import ModelChoices, TurnModel
from app.observability.turns import note_model, note_usage, observed_turn
from app.provider_errors import to_stream_error
from app.providers import ResolvedProvider
from app.sdk_fixes.attachments_first import ChecksAttachmentsFirst
from app.sdk_fixes.cancelled_streams import SavesCancelledStreams
from app.sdk_fixes.loaded_history import LoadedHistory
from app.sdk_fixes.message_ids import with_own_message_ids
from app.sdk_fixes.stream_task_leak import release_queue_reader
from app.stores import AppStore
from app.titles import TitleMaker, title_from

logger = logging.getLogger(__name__)

_recording: set[asyncio.Future[None]] = set()


def _recorded(task: asyncio.Future[None]) -> None:
    _recording.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.warning("token usage not recorded: %s", type(task.exception()).__name__)


class ChatServer(ChecksAttachmentsFirst[RequestContext], SavesCancelledStreams[RequestContext]):
    """chatkit's server with the fixes of app/sdk_fixes/ (see each base and call).

    ``attachments`` None: attachments are off (``attachments.create`` gets a 400).
    ``models`` None: every turn runs the agent's own model (no MODEL_CHOICES, no
    reasoning parameters). ``titles`` None: the first message stays the title.
    """

    def __init__(
        self,
        store: AppStore,
        agent: Agent[AgentContext[Any]],
        provider: ResolvedProvider,
        history_limit: int,
        attachments: AttachmentService | None = None,
        *,
        history_image_limit: int = 4,
        attachment_text_chars: int = 20_000,
        limits: Limits | None = None,
        models: ModelChoices | None = None,
        titles: TitleMaker | None = None,
    ) -> None:
        self.attachments = attachments or AttachmentService(store, AttachmentPolicy.off())
        super().__init__(store, attachment_store=self.attachments)
        self.app_store = store  # the SDK types self.store as its Store; ours has more
        self.agent = agent
        self.provider = provider
        self.history_limit = history_limit
        self.history_image_limit = history_image_limit
        self.attachment_text_chars = attachment_text_chars
        self.limits = limits
        self.models = models
        self.titles = titles

    def converter(self, context: RequestContext) -> HistoryConverter:
        """This turn's converter: it reads the attachments of the request's user."""

        async def read(attachment_id: str, max_bytes: int | None) -> tuple[bytes, str] | None:
            return await self.attachments.read(attachment_id, context, max_bytes)

        return HistoryConverter(
            read,
            image_limit=self.history_image_limit,
            text_chars=self.attachment_text_chars,
            kinds=self.provider.provider.attachment_kinds,
        )

    async def check_request(self, request: ChatKitReq, context: RequestContext) -> None:
        if self.models is not None:
            self.models.check(request)  # a refused model counts against no limit
        # The limits first (app/limits/), on the request as parsed once: a refused
        # request is stored nowhere, starts no stream and reads no attachment.
        if self.limits is not None:
            refusal = await self.limits.check(request, context.user_id, context.client_ip)
            if refusal is not None:
                raise LimitExceeded(refusal)
        match request:
            case ThreadsCustomActionReq() | ThreadsSyncCustomActionReq():
                await check_action(extensions.ACTIONS, request.params, self.store, context)
            case ThreadsAddClientToolOutputReq():
                await self.check_tool_output(request.params.thread_id, context)
        await super().check_request(request, context)

    async def check_tool_output(self, thread_id: str, context: RequestContext) -> None:
        """A client tool's output needs the call it answers, the thread's last item (as
        chatkit looks for it): without one, a 400 here instead of a failed stream."""
        await self.store.load_thread(thread_id, context)  # NotFoundError: not theirs
        last = await self.store.load_thread_items(thread_id, None, 1, "desc", context)
        if not any(
            isinstance(item, ClientToolCallItem) and item.status == "pending" for item in last.data
        ):
            raise ValueError(
                f"Thread {thread_id} has no client tool call waiting for output: it was "
                "answered already, or the conversation moved on. Send a message instead."
            )

    async def check_attachments(
        self, attachment_ids: list[str], thread_id: str | None, context: RequestContext
    ) -> None:
        # Refused here, an HTTP error; the SDK then binds them to the thread when it
        # saves the message (the store's save_attachment keeps thread_id).
        await self.attachments.check_message(attachment_ids, thread_id, context)

    @observed_turn
    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if thread.title is None and input_user_message is not None:
            # The SDK saves the thread and tells the client when it changed.
            thread.title = title_from(input_user_message)
            if self.titles is not None:
                self.titles.ask_later(thread)

        history = await self.recent_items(thread, context)
        turn = self.models.for_turn(history) if self.models is not None else None
        if turn is not None:
            note_model(turn.name)
        agent_context = AgentContext[RequestContext](
            thread=thread,
            store=cast(
                Store[RequestContext],
                LoadedHistory(self.store, thread.id, history, len(history) < self.history_limit),
            ),
            request_context=context,
        )
        limits = self.limits
        sent = trim_history(history, limits.settings.history_max_chars) if limits else history
        result = Runner.run_streamed(
            self.agent,
            await self.converter(context).to_agent_input(sent),
            context=agent_context,
            run_config=self.run_config(turn),
        )
        events = stream_agent_response(agent_context, result)
        reply_started = False
        try:
            async for event in with_own_message_ids(
                events,
                lambda: self.store.generate_item_id("message", thread, context),
                lambda: self.store.generate_item_id("tool_call", thread, context),
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
            note_usage(result.context_wrapper.usage)
            if limits is not None:
                usage = result.context_wrapper.usage
                # A task: a dropped client cancels this await, not the accounting.
                recording = asyncio.ensure_future(
                    limits.record_usage(context.user_id, usage.input_tokens, usage.output_tokens)
                )
                _recording.add(recording)
                recording.add_done_callback(_recorded)
                await asyncio.shield(recording)
        if self.titles is not None and turn is not None:
            # After the reply: the title never holds back its first token.
            await self.titles.retitle(thread, turn, context)

    def run_config(self, turn: TurnModel | None) -> RunConfig | None:
        """The turn's model and its parameters: the picked model, its reasoning, the
        output cap of the limits."""
        settings = self.limits.model_settings() if self.limits is not None else None
        if turn is None:
            return RunConfig(model_settings=settings) if settings is not None else None
        settings = turn.settings.resolve(settings)
        return RunConfig(model=turn.model, model_settings=settings)

    async def action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        """A widget's server action (app/extensions.py's ACTIONS; check_request checked
        it): the widget replaced in place. chatkit saves the replaced item."""
        yield ThreadItemReplacedEvent(item=await run_action(extensions.ACTIONS, action, sender))

    async def sync_action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: RequestContext,
    ) -> SyncCustomActionResponse:
        """The same, answered in one response. chatkit saves nothing on this path."""
        updated = await run_action(extensions.ACTIONS, action, sender)
        await self.store.save_item(thread.id, updated, context)
        return SyncCustomActionResponse(updated_item=updated)

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
        # Only the thread's owner may rate its items: the store checks every item and
        # writes all or nothing (NotFoundError, a 404, otherwise).
        await self.app_store.save_feedback(thread_id, item_ids, feedback, context)
