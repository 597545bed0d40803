"""TITLE_MODE=model: after a thread's first reply, the model names the thread.

The thread already carries its first message as a title (``title_from``), so a title
request that fails or times out changes nothing. It runs after the reply has streamed,
never before its first token, as one short non-streaming request on the turn's model;
its tokens count against the user's budget like the turn's.
"""

from __future__ import annotations

import asyncio
import logging

from agents import Agent, ModelSettings, RunConfig, Runner
from chatkit.types import (
    AssistantMessageItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)

from app.context import RequestContext
from app.limits import Limits
from app.model_choice import TurnModel
from app.reasoning import accepts_reasoning
from app.stores import AppStore

logger = logging.getLogger(__name__)

TITLE_LENGTH = 60
TITLE_INSTRUCTIONS = (
    "Write a title of at most six words for the conversation below, in its language. "
    "Reply with the title only: no quotes, no final period."
)
# Enough for six words; a reasoning model also spends tokens thinking before it answers.
TITLE_MAX_TOKENS = 32
REASONING_TITLE_MAX_TOKENS = 1024
TITLE_TIMEOUT_SECONDS = 15.0
# Characters of the first message and of the reply the model reads.
EXCERPT_CHARS = 2000
# The first reply is looked for among this many first items of the thread.
FIRST_ITEMS = 20
# In ThreadMetadata.metadata (stored with the thread): the title is still to be asked.
PENDING_KEY = "title_pending"


def message_text(message: UserMessageItem) -> str:
    """A user message's typed text (its tags and attachments left out)."""
    return " ".join(
        part.text for part in message.content if isinstance(part, UserMessageTextContent)
    )


def title_from(message: UserMessageItem) -> str | None:
    """The first-message title: its text on one line, cut at TITLE_LENGTH."""
    return shorten(message_text(message))


def shorten(text: str) -> str | None:
    text = " ".join(text.split())
    if not text:
        return None
    return text if len(text) <= TITLE_LENGTH else text[: TITLE_LENGTH - 1].rstrip() + "…"


def clean_title(text: str) -> str | None:
    """The model's answer as a title: one line, without quotes or a final period."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    line = line.strip().strip("\"'`*#").strip().removeprefix("Title:").strip()
    return shorten(line.rstrip("."))


class TitleMaker:
    """Titles a thread once, after its first reply (a first turn that only called a
    client tool, or failed, has none yet: the thread waits for the next one)."""

    def __init__(
        self,
        store: AppStore,
        limits: Limits | None = None,
        timeout_seconds: float = TITLE_TIMEOUT_SECONDS,
    ) -> None:
        self.store = store
        self.limits = limits
        self.timeout_seconds = timeout_seconds

    @staticmethod
    def ask_later(thread: ThreadMetadata) -> None:
        """Mark a new thread (saved with it) for a title after its first reply."""
        thread.metadata[PENDING_KEY] = True

    async def retitle(
        self, thread: ThreadMetadata, turn: TurnModel, context: RequestContext
    ) -> None:
        """Give a marked thread the model's title once it has a reply; the SDK saves the
        thread and sends ``thread.updated``."""
        if not thread.metadata.get(PENDING_KEY):
            return
        conversation = await self._first_exchange(thread, context)
        if conversation is None:
            return
        del thread.metadata[PENDING_KEY]  # asked once: a failure is not retried every turn
        try:
            title = await asyncio.wait_for(
                self._ask(conversation, turn, context), self.timeout_seconds
            )
        except Exception as error:  # the first message's title stays
            logger.warning("title not generated: %s", type(error).__name__)
            return
        thread.title = title or thread.title

    async def _ask(self, conversation: str, turn: TurnModel, context: RequestContext) -> str | None:
        reasons = accepts_reasoning(turn.name)
        agent = Agent(
            name="Title",
            instructions=TITLE_INSTRUCTIONS,
            model=turn.model,
            # No reasoning parameters: a title needs no summary, and not every model
            # takes them (app/reasoning.py).
            model_settings=ModelSettings(
                max_tokens=REASONING_TITLE_MAX_TOKENS if reasons else TITLE_MAX_TOKENS,
                include_usage=True,
            ),
        )
        result = await Runner.run(agent, conversation, run_config=RunConfig())
        usage = result.context_wrapper.usage
        if self.limits is not None:
            await self.limits.record_usage(context.user_id, usage.input_tokens, usage.output_tokens)
        return clean_title(str(result.final_output or ""))

    async def _first_exchange(self, thread: ThreadMetadata, context: RequestContext) -> str | None:
        """The thread's first message and first reply as text; None before the reply."""
        page = await self.store.load_thread_items(thread.id, None, FIRST_ITEMS, "asc", context)
        first: str | None = None
        for item in page.data:
            if isinstance(item, UserMessageItem) and first is None:
                first = f"User: {message_text(item)[:EXCERPT_CHARS]}"
            elif isinstance(item, AssistantMessageItem) and first is not None:
                reply = " ".join(part.text for part in item.content)
                return f"{first}\nAssistant: {reply[:EXCERPT_CHARS]}"
        if len(page.data) >= FIRST_ITEMS:  # no reply among the first items: give up
            thread.metadata.pop(PENDING_KEY, None)
        return None
