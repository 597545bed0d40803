"""Signed attachment URLs: the upload and preview links the server hands out.

The widget uploads to the descriptor's URL and shows a preview with a plain
``<img src>``: neither request carries the ``Authorization`` header of AUTH_MODE=oidc.
So each URL carries its own proof: an HMAC-SHA256 over the action (``upload`` or
``download``), the attachment id, the user id and an expiry, with a key derived from
SESSION_SECRET. A valid signature stands in for the cookie or bearer token, as the user
the URL was issued to; any change to the URL, or its expiry passing, refuses it (403).

A signed URL is a bearer capability, like an S3 presigned URL: whoever holds it may do
its one action on its one file until it expires. Previews are signed again whenever an
attachment leaves the store (``AttachmentService.present``), so a thread loaded later
gets fresh links; their expiry is rounded to a day so a preview's URL, and the
browser's cache of it, stays the same for a day.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Literal
from urllib.parse import urlencode

from app.attachments.policy import AttachmentError

Action = Literal["upload", "download"]

_VERSION = "v1"
UPLOAD_SECONDS = 3600  # an upload starts right after attachments.create
PREVIEW_DAYS = 2  # a preview link lasts one to two days (rounded to whole UTC days)
DAY = 86_400
# The query parameters of a signed URL.
USER, EXPIRES, SIGNATURE = "user", "expires", "signature"


def refused(code: str, message: str) -> AttachmentError:
    return AttachmentError(403, code, message)


class AttachmentUrls:
    """Signs and checks the query of attachment URLs. ``clock`` is Unix seconds."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._key = hashlib.sha256(b"chatkit-attachment-url:" + secret.encode()).digest()
        self.clock = clock

    def _signature(self, action: Action, attachment_id: str, user_id: str, expires: int) -> str:
        payload = "\n".join((_VERSION, action, attachment_id, user_id, str(expires)))
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def expiry(self, action: Action, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        if action == "upload":
            return int(now) + UPLOAD_SECONDS
        return (int(now) // DAY + PREVIEW_DAYS) * DAY

    def query(
        self, action: Action, attachment_id: str, user_id: str, now: float | None = None
    ) -> str:
        """``user=...&expires=...&signature=...`` for one action on one attachment."""
        expires = self.expiry(action, now)
        signature = self._signature(action, attachment_id, user_id, expires)
        return urlencode({USER: user_id, EXPIRES: expires, SIGNATURE: signature})

    def verify(self, action: Action, attachment_id: str, params: Mapping[str, str]) -> str:
        """The user a signed URL was issued to; AttachmentError 403 for anything else."""
        user_id, expires, signature = (params.get(name, "") for name in (USER, EXPIRES, SIGNATURE))
        if not (user_id and expires.isdigit() and signature):
            raise refused(
                "bad_signature",
                f"This attachment link is incomplete: it needs {USER}, {EXPIRES} and "
                f"{SIGNATURE}. Use the link the server handed out, unchanged.",
            )
        expected = self._signature(action, attachment_id, user_id, int(expires))
        if not hmac.compare_digest(signature, expected):
            raise refused(
                "bad_signature",
                f"This link's signature does not match (changed, or not a link to {action} "
                "this file). Use the link the server handed out, unchanged.",
            )
        if int(expires) < self.clock():
            raise refused(
                "link_expired",
                "This attachment link has expired. Reload the conversation for a fresh one"
                + (", or attach the file again." if action == "upload" else "."),
            )
        return user_id
