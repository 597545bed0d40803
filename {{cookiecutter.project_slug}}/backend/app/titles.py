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


def title_from(message: UserMessageItem) -> str | None:
    """The first-message title: its text on one line, cut at TITLE_LENGTH."""
    text = " ".join(
        part.text for part in message.content if isinstance(part, UserMessageTextContent)
    )
    return shorten(text)


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
    """Asks for the title of a thread after its first reply; None when none came."""

    def __init__(
        self,
        store: AppStore,
        limits: Limits | None = None,
        timeout_seconds: float = TITLE_TIMEOUT_SECONDS,
    ) -> None:
        self.store = store
        self.limits = limits
        self.timeout_seconds = timeout_seconds

    async def title(
        self, thread: ThreadMetadata, turn: TurnModel, context: RequestContext
    ) -> str | None:
        try:
            return await asyncio.wait_for(self._ask(thread, turn, context), self.timeout_seconds)
        except Exception as error:  # the first message's title stays
            logger.warning("title not generated: %s", type(error).__name__)
            return None

    async def _ask(
        self, thread: ThreadMetadata, turn: TurnModel, context: RequestContext
    ) -> str | None:
        conversation = await self._first_exchange(thread, context)
        if not conversation:
            return None
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

    async def _first_exchange(self, thread: ThreadMetadata, context: RequestContext) -> str:
        """The thread's first message and first reply, as text."""
        page = await self.store.load_thread_items(thread.id, None, 10, "asc", context)
        lines: list[str] = []
        for item in page.data:
            if isinstance(item, UserMessageItem) and not lines:
                text = " ".join(
                    p.text for p in item.content if isinstance(p, UserMessageTextContent)
                )
                lines.append(f"User: {text[:EXCERPT_CHARS]}")
            elif isinstance(item, AssistantMessageItem) and lines:
                text = " ".join(part.text for part in item.content)
                lines.append(f"Assistant: {text[:EXCERPT_CHARS]}")
                break
        return "\n".join(lines)
