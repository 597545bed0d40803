"""What the model sees: the recent conversation, in a shape every API style accepts."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from agents import TResponseInputItem
from chatkit.types import (
    Attachment,
    ClientToolCallItem,
    ThreadItem,
    UserMessageItem,
    UserMessageTagContent,
    WidgetItem,
)
from openai.types.responses import (
    ResponseInputContentParam,
    ResponseInputFileParam,
    ResponseInputImageParam,
    ResponseInputTextParam,
)

from app.attachments.sniff import kind_of
from app.sdk_fixes.assistant_history import PlainAssistantHistory

logger = logging.getLogger(__name__)

# What the model reads as the output of a client tool call the page never answered.
NO_ANSWER = {
    "error": "No answer came from the user's browser: the page was closed or reloaded "
    "before the tool finished. Ask again, or go on without it."
}
WIDGET_SUMMARY_CHARS = 500

# Reads an attachment's bytes (at most the given number) and sniffed type for the
# request's user; None when they are gone.
ReadAttachment = Callable[[str, int | None], Awaitable[tuple[bytes, str] | None]]


def _text(text: str) -> ResponseInputTextParam:
    return ResponseInputTextParam(type="input_text", text=text)


def _data_url(data: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"


class HistoryConverter(PlainAssistantHistory):
    """The SDK's converter, with assistant turns as plain text (see its base), tags and
    attachments. One per turn: it reads the files of the request's user.

    ``image_limit``: only the newest so many images go as images; older ones become a
    line of text, so a thread full of photos does not resend megabytes every turn.
    ``text_chars``: text files are inlined up to this many characters.
    ``kinds``: what the provider takes (provider_table's attachment_kinds).
    """

    def __init__(
        self,
        read: ReadAttachment | None = None,
        *,
        image_limit: int = 4,
        text_chars: int = 20_000,
        kinds: frozenset[str] = frozenset({"image", "pdf", "text"}),
    ) -> None:
        self.read = read
        self.image_limit = image_limit
        self.text_chars = text_chars
        self.kinds = kinds
        self.images_sent: set[str] = set()

    async def to_agent_input(
        self, thread_items: Sequence[ThreadItem] | ThreadItem
    ) -> list[TResponseInputItem]:
        items = thread_items if isinstance(thread_items, Sequence) else [thread_items]
        self.images_sent = set(self._newest_images(items))
        return await super().to_agent_input(thread_items)

    def _newest_images(self, items: Sequence[ThreadItem]) -> list[str]:
        newest: list[str] = []
        for item in reversed(items):
            if not isinstance(item, UserMessageItem):
                continue
            for attachment in reversed(item.attachments):
                if len(newest) >= self.image_limit:
                    return newest
                if kind_of(attachment.mime_type) == "image":
                    newest.append(attachment.id)
        return newest

    async def widget_to_input(self, item: WidgetItem) -> TResponseInputItem:
        """A widget as one line of text, its copy_text: chatkit's default sends the
        whole widget tree as JSON, hundreds of tokens per card on every later turn."""
        summary = item.copy_text or item.widget.model_dump_json(exclude_none=True)
        if len(summary) > WIDGET_SUMMARY_CHARS:
            summary = summary[:WIDGET_SUMMARY_CHARS] + "..."
        return {"role": "user", "content": f"[A widget was shown to the user: {summary}]"}

    async def client_tool_call_to_input(self, item: ClientToolCallItem) -> list[TResponseInputItem]:
        """The call and the page's answer. A call the page never answered (it was closed
        mid-call) goes with an output saying so: chatkit's default drops it, and the
        model would not know why its call got nowhere."""
        output = item.output if item.status == "completed" else NO_ANSWER
        return [
            {
                "type": "function_call",
                "call_id": item.call_id,
                "name": item.name,
                "arguments": json.dumps(item.arguments),
            },
            {
                "type": "function_call_output",
                "call_id": item.call_id,
                "output": json.dumps(output, ensure_ascii=False, default=str),
            },
        ]

    async def tag_to_message_content(self, tag: UserMessageTagContent) -> ResponseInputTextParam:
        """An @-mention as text. chatkit's default raises NotImplementedError, and since
        the message is stored first, one tagged message would fail every later turn of
        its thread. Replace this when your widget offers entities with real data."""
        data = json.dumps(tag.data, ensure_ascii=False, default=str)[:2000]
        return ResponseInputTextParam(type="input_text", text=f"@{tag.text}: {data}")

    async def attachment_to_message_content(
        self, attachment: Attachment
    ) -> ResponseInputContentParam:
        """Images and PDFs as data URLs (a provider cannot reach a self-hosted backend),
        text inlined. Never raises: chatkit's default does, and one stored message that
        cannot be converted would fail every later turn of its thread."""
        try:
            return await self._content(attachment)
        except Exception as error:
            logger.warning("attachment %s not converted: %r", attachment.id, error)
            return _text(f"[file {attachment.name} is no longer available]")

    async def _content(self, attachment: Attachment) -> ResponseInputContentParam:
        name = attachment.name
        kind = kind_of(attachment.mime_type)
        if kind is None or kind not in self.kinds:
            return _text(f"[file {name}: this model does not take {attachment.mime_type} files]")
        if kind == "image" and attachment.id not in self.images_sent:
            return _text(f"[image {name}, not resent]")
        # A UTF-8 character is at most 4 bytes: enough bytes for text_chars characters.
        limit = self.text_chars * 4 + 4 if kind == "text" else None
        found = await self.read(attachment.id, limit) if self.read is not None else None
        if found is None:
            return _text(f"[file {name} is no longer available]")
        data, mime_type = found
        if kind == "image":
            return ResponseInputImageParam(
                type="input_image", image_url=_data_url(data, mime_type), detail="auto"
            )
        if kind == "pdf":
            return ResponseInputFileParam(
                type="input_file", file_data=_data_url(data, "application/pdf"), filename=name
            )
        text = data.decode("utf-8", errors="replace")
        if len(text) > self.text_chars or (limit is not None and len(data) >= limit):
            text = text[: self.text_chars] + f"\n[... cut at {self.text_chars} characters]"
        return _text(f"[file {name}]\n{text}")
