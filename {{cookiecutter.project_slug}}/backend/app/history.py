"""What the model sees: the recent conversation, in a shape every API style accepts."""

from __future__ import annotations

import json

from agents import TResponseInputItem
from chatkit.agents import ThreadItemConverter
from chatkit.types import AssistantMessageItem, UserMessageTagContent
from openai.types.responses import ResponseInputTextParam


class HistoryConverter(ThreadItemConverter):
    """The SDK's converter, with assistant turns sent as plain text.

    chatkit's default sends earlier assistant replies as `output_text` content parts.
    The Responses API accepts them, but the Agents SDK's Chat Completions converter
    raises `UserError: Unknown content`, so every second turn fails on non-OpenAI
    providers (openai-chatkit 1.6.5, openai-agents 0.24.0). A string content is
    accepted by both API styles.
    """

    async def assistant_message_to_input(
        self, item: AssistantMessageItem
    ) -> TResponseInputItem | list[TResponseInputItem] | None:
        text = "".join(part.text for part in item.content)
        return {"role": "assistant", "content": text}

    async def tag_to_message_content(self, tag: UserMessageTagContent) -> ResponseInputTextParam:
        """An @-mention as text. chatkit's default raises NotImplementedError, and since
        the message is stored first, one tagged message would fail every later turn of
        its thread. Replace this when your widget offers entities with real data."""
        data = json.dumps(tag.data, ensure_ascii=False, default=str)[:2000]
        return ResponseInputTextParam(type="input_text", text=f"@{tag.text}: {data}")
