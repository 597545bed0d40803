"""The attachment service: ChatKit's ``AttachmentStore`` plus uploads, downloads and sweeps.

Storage is the app's store (``ATTACHMENT_STORAGE=database``: the bytes in chunks next
to the threads) or an S3 bucket (``s3://BUCKET/PREFIX``: the browser PUTs to a presigned
URL, and the bytes are checked when a message first names the file). Either way the
attachment's row in the store says who owns it, whether its upload finished (with the
sniffed type and size) and which thread it is bound to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chatkit.store import AttachmentStore, NotFoundError
from chatkit.types import (
    Attachment,
    AttachmentCreateParams,
    AttachmentUploadDescriptor,
    FileAttachment,
    ImageAttachment,
)
from pydantic import AnyUrl

from app.attachments.policy import AttachmentError, AttachmentPolicy, clean_name
from app.attachments.sniff import SNIFF_BYTES, TEXT, kind_of, sniff
from app.attachments.urls import AttachmentUrls
from app.context import RequestContext
from app.observability.metrics import record_upload
from app.stores import AppStore
from app.stores.base import AttachmentBoundError

if TYPE_CHECKING:
    from app.attachments.s3 import S3Objects
    from app.attachments.urls import Action
    from app.config import Settings
    from app.provider_table import Provider
    from app.stores.base import UploadInfo

logger = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024  # what one write_chunk call stores
DECLARED_SIZE = "declared_size"  # the attachment's metadata key for its declared bytes
S3_UPLOAD_ID = "s3"  # marks an S3 object checked and accepted (no chunks in the store)
# An origin for contexts built outside an HTTP request (scripts, tests of the store).
FALLBACK_ORIGIN = "http://localhost"


def already_attached() -> AttachmentError:
    return AttachmentError(
        409, "already_attached", "This attachment is part of a message already: its file is fixed."
    )


def larger_than_declared(declared: int) -> AttachmentError:
    return AttachmentError(
        413,
        "larger_than_declared",
        f"The upload is larger than the {declared} bytes its attachments.create declared; "
        "declare the file's real size.",
    )


def base_mime_type(mime_type: str) -> str:
    """``text/plain; charset=utf-8`` -> ``text/plain``."""
    return mime_type.split(";", 1)[0].strip().lower()


def parse_s3_storage(storage: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (``bucket``, ``some/prefix``)."""
    bucket, _, prefix = storage.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


@dataclass(frozen=True)
class Download:
    attachment: Attachment
    size: int
    content_type: str
    chunks: AsyncIterator[bytes]


class AttachmentService(AttachmentStore[RequestContext]):
    """Every attachment operation, scoped by the request's user like the store."""

    def __init__(
        self,
        store: AppStore,
        policy: AttachmentPolicy,
        *,
        objects: S3Objects | None = None,
        orphan_hours: float = 24.0,
        urls: AttachmentUrls | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.objects = objects
        self.orphan_hours = orphan_hours
        # Signs the upload and preview URLs (urls.py); None: plain URLs, cookie only.
        self.urls = urls
        if objects is not None:
            # Rows go with threads, deletes and sweeps, in the store; their objects then.
            store.on_attachments_deleted = self._delete_objects
        if urls is not None:
            store.present_attachment = self.present

    @classmethod
    def from_settings(
        cls, store: AppStore, settings: Settings, provider: Provider
    ) -> AttachmentService:
        policy = AttachmentPolicy.build(
            enabled=settings.attachments_enabled,
            max_bytes=settings.attachment_max_bytes,
            max_per_message=settings.attachment_max_per_message,
            types=settings.attachment_types,
            provider=provider,
        )
        if settings.attachments_enabled and policy.refused_by_provider:
            logger.warning(
                "attachments: %s does not take %s (ATTACHMENT_TYPES); they are refused",
                provider.label,
                ", ".join(policy.refused_by_provider),
            )
        objects = None
        if policy.enabled and settings.attachment_storage.startswith("s3://"):
            from app.attachments.s3 import S3Objects  # boto3 only when S3 is used

            bucket, prefix = parse_s3_storage(settings.attachment_storage)
            objects = S3Objects(bucket, prefix, settings.s3_endpoint_url or None)
        secret = settings.session_secret.get_secret_value() if settings.session_secret else ""
        return cls(
            store,
            policy,
            objects=objects,
            orphan_hours=settings.attachment_orphan_hours,
            urls=AttachmentUrls(secret),
        )

    # -- ChatKit's AttachmentStore ---------------------------------------------------------

    async def create_attachment(
        self, input: AttachmentCreateParams, context: RequestContext
    ) -> Attachment:
        mime_type = base_mime_type(input.mime_type)
        self.policy.check_declared(input.size, mime_type)
        attachment_id = self.store.generate_attachment_id(mime_type, context)
        origin = context.origin or FALLBACK_ORIGIN
        if self.objects is not None:
            url = await self.objects.presign_put(attachment_id, mime_type, input.size)
            descriptor = AttachmentUploadDescriptor(
                url=AnyUrl(url), method="PUT", headers={"Content-Type": mime_type}
            )
        else:
            url = self._url(origin, attachment_id, "upload", context.user_id)
            descriptor = AttachmentUploadDescriptor(url=AnyUrl(url), method="POST")
        fields: dict[str, Any] = {
            "id": attachment_id,
            "name": clean_name(input.name),
            "mime_type": mime_type,
            "upload_descriptor": descriptor,
            # Kept in the store, never sent: an upload may not exceed it, so the limits
            # count uploads by their declared bytes (app/limits/).
            "metadata": {DECLARED_SIZE: input.size},
        }
        if kind_of(mime_type) == "image":
            preview = self._url(origin, attachment_id, "download", context.user_id)
            return ImageAttachment(**fields, preview_url=AnyUrl(preview))
        return FileAttachment(**fields)

    def _url(self, origin: str, attachment_id: str, action: Action, user_id: str) -> str:
        path = f"{origin}/chatkit/attachments/{attachment_id}"
        path += "/upload" if action == "upload" else ""
        if self.urls is None:
            return path
        return f"{path}?{self.urls.query(action, attachment_id, user_id)}"

    def present(self, attachment: Attachment, context: RequestContext) -> Attachment:
        """The attachment as it leaves the store for ``context``'s user: its preview URL
        signed afresh, on the request's origin (a thread loaded days later still shows
        its images). Nothing changes outside an HTTP request (no origin)."""
        if not isinstance(attachment, ImageAttachment) or not context.origin:
            return attachment
        preview = self._url(context.origin, attachment.id, "download", context.user_id)
        if str(attachment.preview_url) == preview:
            return attachment
        return attachment.model_copy(update={"preview_url": AnyUrl(preview)})

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        # Only the owner's: NotFoundError otherwise. The server then deletes the row with
        # the store's delete_attachment, which takes the chunks (and S3 objects) with it.
        await self.store.attachment_upload(attachment_id, context)

    # -- uploads -------------------------------------------------------------------------

    async def upload(
        self, attachment_id: str, body: AsyncIterator[bytes], context: RequestContext
    ) -> Attachment:
        """Store ``body`` as the attachment's bytes, chunk by chunk, checking as it goes.

        Reading stops at the first byte past the limit (413) or once the first bytes show
        the wrong type (415). Nothing of a refused or broken upload can be attached: its
        chunks carry an upload id the attachment only takes when the upload finished.
        """
        try:
            attachment, size = await self._upload(attachment_id, body, context)
        except AttachmentError:
            record_upload(None)
            raise
        record_upload(size)
        return attachment

    async def _upload(
        self, attachment_id: str, body: AsyncIterator[bytes], context: RequestContext
    ) -> tuple[Attachment, int]:
        self.policy.check_enabled()
        if self.objects is not None:
            raise AttachmentError(
                400,
                "upload_to_s3",
                "This server stores files in S3: PUT the file to the attachment's "
                "upload_descriptor URL.",
            )
        info = await self.store.attachment_upload(attachment_id, context)
        if info.thread_id is not None:
            raise already_attached()
        attachment = await self.store.load_attachment(attachment_id, context)
        declared = (attachment.metadata or {}).get(DECLARED_SIZE)
        upload_id = uuid.uuid4().hex
        wrote = False
        try:
            size, content_type, buffer, seq = 0, "", bytearray(), 0
            async for piece in body:
                size += len(piece)
                if size > self.policy.max_bytes:
                    self.policy.check_size(size)
                if isinstance(declared, int) and size > declared:
                    raise larger_than_declared(declared)
                buffer += piece
                if not content_type and len(buffer) >= SNIFF_BYTES:
                    head = bytes(buffer[:SNIFF_BYTES])
                    content_type = self._checked_type(attachment, head, complete=False)
                while content_type and len(buffer) >= CHUNK_BYTES:
                    wrote = True
                    await self.store.write_chunk(
                        attachment_id, upload_id, seq, bytes(buffer[:CHUNK_BYTES]), context
                    )
                    del buffer[:CHUNK_BYTES]
                    seq += 1
            if size == 0:
                raise AttachmentError(400, "empty_body", "The upload is empty: send the file.")
            if not content_type:
                content_type = self._checked_type(attachment, bytes(buffer), complete=True)
            if buffer:
                wrote = True
                await self.store.write_chunk(attachment_id, upload_id, seq, bytes(buffer), context)
            done = self._finished(attachment, content_type)
            try:
                await self.store.finish_upload(done, upload_id, size, content_type, context)
            except AttachmentBoundError:  # a message named it while this upload ran
                raise already_attached() from None
        except BaseException:
            if wrote:
                await _shielded(self.store.discard_upload(upload_id))
            raise
        return done, size

    def _checked_type(self, attachment: Attachment, head: bytes, complete: bool) -> str:
        """The type the bytes show, when it is allowed and of the declared kind; else 415."""
        sniffed = sniff(head[:SNIFF_BYTES], complete and len(head) <= SNIFF_BYTES)
        declared = attachment.mime_type
        if sniffed is None:
            raise AttachmentError(
                415,
                "unrecognized_content",
                f"The file's bytes are none of the accepted types ({', '.join(self.policy.types)})"
                " (HTML, SVG and XML never are).",
            )
        if kind_of(sniffed) != kind_of(declared):
            raise AttachmentError(
                415,
                "content_mismatch",
                f"The file's bytes are {sniffed}, not {declared} as declared.",
            )
        # Text has no signature: the declared text type (allowed at create) names it.
        content_type = declared if sniffed == TEXT else sniffed
        self.policy.check_type(content_type)
        return content_type

    @staticmethod
    def _finished(attachment: Attachment, content_type: str) -> Attachment:
        update: dict[str, Any] = {"upload_descriptor": None}
        if kind_of(content_type) != "text":
            update["mime_type"] = content_type  # what the bytes are (a PNG named .jpg...)
        return attachment.model_copy(update=update)

    async def _verify_object(self, info: UploadInfo, context: RequestContext) -> None:
        """Accept an S3 object once: its size by HEAD, its type from a ranged read."""
        assert self.objects is not None
        attachment_id = info.attachment_id
        size = await self.objects.head(attachment_id)
        if size is None:
            raise AttachmentError(
                409, "not_uploaded", "The file is not uploaded yet: upload it, then send."
            )
        attachment = await self.store.load_attachment(attachment_id, context)
        try:
            self.policy.check_size(size)
            head = await self.objects.read_head(attachment_id, SNIFF_BYTES)
            content_type = self._checked_type(attachment, head, complete=size <= len(head))
        except AttachmentError:
            record_upload(None)
            await self.objects.delete([attachment_id])  # refused bytes are not kept
            raise
        record_upload(size)
        done = self._finished(attachment, content_type)
        # Bound since: a racing message checked and accepted the same object first. Not
        # this message's fault; saving it refuses it if it names another thread.
        with contextlib.suppress(AttachmentBoundError):
            await self.store.finish_upload(done, S3_UPLOAD_ID, size, content_type, context)

    async def uploaded(self, attachment_id: str, context: RequestContext) -> UploadInfo:
        """The attachment's upload, finished; 409 ``not_uploaded`` before; 404 not the user's."""
        info = await self.store.attachment_upload(attachment_id, context)
        if info.upload_id is None and self.objects is not None:
            await self._verify_object(info, context)
            info = await self.store.attachment_upload(attachment_id, context)
        if info.upload_id is None or info.size is None or not info.content_type:
            raise AttachmentError(
                409, "not_uploaded", "The file is not uploaded yet: upload it, then send."
            )
        return info

    # -- messages ------------------------------------------------------------------------

    async def check_message(
        self, attachment_ids: list[str], thread_id: str | None, context: RequestContext
    ) -> None:
        """Refuse a message's attachments before anything is stored.

        404 for an id that is not the user's or is bound to another thread (a message
        of thread B cannot show thread A's file), 409 before its upload finished, 400
        past the count. ``thread_id`` None: a new thread.
        """
        if not attachment_ids:
            return
        self.policy.check_enabled()
        self.policy.check_count(len(attachment_ids))
        if len(set(attachment_ids)) != len(attachment_ids):
            raise AttachmentError(
                400, "duplicate_attachment", "The message names an attachment twice."
            )
        for attachment_id in attachment_ids:
            info = await self.store.attachment_upload(attachment_id, context)
            if info.thread_id is not None and info.thread_id != thread_id:
                raise NotFoundError(f"Attachment {attachment_id} not found")
            info = await self.uploaded(attachment_id, context)
            # The provider may have changed since the upload (LLM_PROVIDER).
            self.policy.check_type(info.content_type or "")

    # -- downloads -----------------------------------------------------------------------

    async def download(self, attachment_id: str, context: RequestContext) -> Download:
        """The owner's finished file; NotFoundError for anything else (not uploaded too)."""
        try:
            info = await self.uploaded(attachment_id, context)
        except AttachmentError as error:
            if error.code == "not_uploaded":
                raise NotFoundError(f"Attachment {attachment_id} not uploaded") from None
            raise
        attachment = await self.store.load_attachment(attachment_id, context)
        assert info.size is not None and info.content_type is not None
        return Download(attachment, info.size, info.content_type, self._chunks(info, context))

    def _chunks(self, info: UploadInfo, context: RequestContext) -> AsyncIterator[bytes]:
        if info.upload_id == S3_UPLOAD_ID and self.objects is not None:
            chunks: AsyncIterator[bytes] = self.objects.stream(info.attachment_id)
            return chunks
        return self.store.read_chunks(info.attachment_id, context)

    async def read(
        self, attachment_id: str, context: RequestContext, max_bytes: int | None = None
    ) -> tuple[bytes, str] | None:
        """The file's bytes (the first ``max_bytes``) and type, for the model; None when
        the file is gone or unreadable, so one missing file never breaks a thread."""
        try:
            info = await self.uploaded(attachment_id, context)
            data = bytearray()
            chunks = self._chunks(info, context)
            try:
                async for chunk in chunks:
                    data += chunk
                    if max_bytes is not None and len(data) >= max_bytes:
                        break
            finally:
                close = getattr(chunks, "aclose", None)
                if close is not None:
                    await close()
        except Exception as error:
            logger.warning("attachment %s unreadable: %s", attachment_id, type(error).__name__)
            return None
        content = bytes(data if max_bytes is None else data[:max_bytes])
        return content, info.content_type or ""

    # -- lifecycle -----------------------------------------------------------------------

    async def sweep_orphans(self) -> list[str]:
        """Delete uploads never sent in a message, older than ATTACHMENT_ORPHAN_HOURS."""
        cutoff = datetime.now(UTC) - timedelta(hours=self.orphan_hours)
        return await self.store.sweep_orphan_attachments(cutoff)

    def sweep_interval(self) -> float:
        """Every few minutes; sooner when orphans expire sooner (tests)."""
        return max(0.2, min(300.0, self.orphan_hours * 3600 / 4))

    async def run_sweeper(self) -> None:
        """The periodic sweep, for the app's lifespan. Several replicas may run it at once:
        the store's sweep is idempotent, and the jitter spreads their runs."""
        while True:
            try:
                swept = await self.sweep_orphans()
                if swept:
                    logger.info("swept %d orphaned attachment(s)", len(swept))
            except Exception as error:
                logger.warning("attachment sweep failed: %s", type(error).__name__)
            await asyncio.sleep(self.sweep_interval() * random.uniform(0.8, 1.2))  # noqa: S311

    async def _delete_objects(self, attachment_ids: list[str]) -> None:
        if self.objects is not None and attachment_ids:
            try:
                await self.objects.delete(attachment_ids)
            except Exception as error:  # the rows are gone; a later sweep cannot find these
                logger.warning("deleting %d S3 object(s) failed: %r", len(attachment_ids), error)


async def _shielded(cleanup: Any) -> None:
    """Run a cleanup to its end even when the request was cancelled (client hung up)."""
    task = asyncio.ensure_future(cleanup)
    with contextlib.suppress(BaseException):
        await asyncio.shield(task)
