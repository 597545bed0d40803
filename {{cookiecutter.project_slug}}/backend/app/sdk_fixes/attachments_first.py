"""Check the attachments a message names before the server stores anything of it.

Upstream (openai-chatkit 1.6.5): ``threads.create`` saves the new thread and sends
``thread.created`` before ``_build_user_message_item`` loads the message's attachments,
so an unknown attachment id leaves an empty thread behind and fails a stream that has
already started. Nor does upstream look at which thread an attachment belongs to:
``_build_user_message_item`` rebinds it to whichever thread names it. This runs the
server's ``check_attachments`` on the parsed request, before ``process`` starts, so a
refused message is an HTTP error and stores nothing. No upstream issue found.

Cost: one store read per named attachment, which the server repeats when it builds the
message; nothing for messages without attachments.
"""

from __future__ import annotations

from typing import TypeVar

from chatkit.types import ChatKitReq, ThreadsAddUserMessageReq, ThreadsCreateReq

from app.sdk_fixes.request_parsing import ParsesOnce

TContext = TypeVar("TContext")


def named_attachments(request: ChatKitReq) -> tuple[str | None, list[str]] | None:
    """(thread id or None for a new thread, attachment ids) of a message request."""
    match request:
        case ThreadsCreateReq():
            return None, request.params.input.attachments
        case ThreadsAddUserMessageReq():
            return request.params.thread_id, request.params.input.attachments
    return None


class ChecksAttachmentsFirst(ParsesOnce[TContext]):
    async def check_request(self, request: ChatKitReq, context: TContext) -> None:
        named = named_attachments(request)
        if named is not None and named[1]:
            await self.check_attachments(named[1], named[0], context)

    async def check_attachments(
        self, attachment_ids: list[str], thread_id: str | None, context: TContext
    ) -> None:
        """Raise to refuse the message (NotFoundError: 404); accepts all by default."""
