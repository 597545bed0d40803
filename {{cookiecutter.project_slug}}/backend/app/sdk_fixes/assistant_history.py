"""Send earlier assistant replies to the model as plain text.

Upstream (openai-chatkit 1.6.5, openai-agents 0.24.0): chatkit's default
``ThreadItemConverter`` sends earlier assistant replies as ``output_text`` content
parts. The Responses API accepts them, but the Agents SDK's Chat Completions converter
raises ``UserError: Unknown content``, so every second turn fails on the providers
served through Chat Completions (OpenRouter, Gemini, Anthropic, Ollama...). A string
content is accepted by both API styles. No upstream issue found.

Cost: none measurable (one string join per assistant item); without it, no second turn.
"""

from __future__ import annotations

from agents import TResponseInputItem
from chatkit.agents import ThreadItemConverter
from chatkit.types import AssistantMessageItem


class PlainAssistantHistory(ThreadItemConverter):
    """chatkit's converter with assistant turns as plain text."""

    async def assistant_message_to_input(
        self, item: AssistantMessageItem
    ) -> TResponseInputItem | list[TResponseInputItem] | None:
        text = "".join(part.text for part in item.content)
        return {"role": "assistant", "content": text}
