"""What the model sees: the recent conversation, in a shape every API style accepts."""

from __future__ import annotations

import json

from chatkit.types import UserMessageTagContent
from openai.types.responses import ResponseInputTextParam

from app.sdk_fixes.assistant_history import PlainAssistantHistory


class HistoryConverter(PlainAssistantHistory):
    """The SDK's converter, with assistant turns as plain text (see its base) and tags."""

    async def tag_to_message_content(self, tag: UserMessageTagContent) -> ResponseInputTextParam:
        """An @-mention as text. chatkit's default raises NotImplementedError, and since
        the message is stored first, one tagged message would fail every later turn of
        its thread. Replace this when your widget offers entities with real data."""
        data = json.dumps(tag.data, ensure_ascii=False, default=str)[:2000]
        return ResponseInputTextParam(type="input_text", text=f"@{tag.text}: {data}")
