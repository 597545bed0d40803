"""The limits on attachments, from the settings and the provider's capabilities.

One source for the server's checks and the widget's ``composer.attachments``
(``GET /chatkit/attachments/policy``), so page and server cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.attachments.sniff import KNOWN_TYPES, kind_of
from app.provider_table import Provider

# Longest file name kept (the rest is cut); names are shown, never used as paths.
MAX_NAME_CHARS = 200


class AttachmentError(Exception):
    """A refused attachment operation: the HTTP status, a code, and what to do about it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def disabled_error() -> AttachmentError:
    return AttachmentError(
        400,
        "attachments_disabled",
        "File attachments are off on this server; set ATTACHMENTS_ENABLED=true to turn them on.",
    )


@dataclass(frozen=True)
class AttachmentPolicy:
    enabled: bool
    max_bytes: int
    max_per_message: int
    # ATTACHMENT_TYPES, in order, narrowed to the kinds the provider takes.
    types: tuple[str, ...]
    # The configured types the provider cannot take (refused with its name).
    refused_by_provider: tuple[str, ...]
    provider_label: str

    @classmethod
    def build(
        cls,
        *,
        enabled: bool,
        max_bytes: int,
        max_per_message: int,
        types: list[str],
        provider: Provider,
    ) -> AttachmentPolicy:
        taken = tuple(t for t in types if kind_of(t) in provider.attachment_kinds)
        return cls(
            enabled=enabled and bool(taken),
            max_bytes=max_bytes,
            max_per_message=max_per_message,
            types=taken,
            refused_by_provider=tuple(t for t in types if t not in taken),
            provider_label=provider.label,
        )

    @classmethod
    def off(cls) -> AttachmentPolicy:
        return cls(False, 0, 0, (), (), "")

    def composer(self) -> dict[str, Any]:
        """ChatKit's ``composer.attachments`` option, exactly."""
        return {
            "enabled": self.enabled,
            "maxSize": self.max_bytes,
            "maxCount": self.max_per_message,
            "accept": {t: list(KNOWN_TYPES[t][1]) for t in self.types} if self.enabled else {},
        }

    def check_enabled(self) -> None:
        if not self.enabled:
            raise disabled_error()

    def check_type(self, mime_type: str) -> None:
        """415 unless ``mime_type`` is allowed and the provider takes it."""
        if mime_type in self.types:
            return
        if mime_type in self.refused_by_provider:
            raise AttachmentError(
                415,
                "unsupported_by_provider",
                f"{self.provider_label} does not take {mime_type} files; accepted here: "
                f"{', '.join(self.types)}.",
            )
        raise AttachmentError(
            415,
            "unsupported_type",
            f"{mime_type or 'This type'} is not accepted; accepted here: {', '.join(self.types)}"
            " (ATTACHMENT_TYPES).",
        )

    def check_size(self, size: int) -> None:
        if size < 1:
            raise AttachmentError(400, "empty_file", "The file is empty.")
        if size > self.max_bytes:
            raise AttachmentError(
                413,
                "too_large",
                f"The file is {size} bytes; the limit is {self.max_bytes} bytes "
                "(ATTACHMENT_MAX_BYTES).",
            )

    def check_declared(self, size: int, mime_type: str) -> None:
        """What ``attachments.create`` declares; the bytes are checked again on upload."""
        self.check_enabled()
        if size < 1:
            raise AttachmentError(
                413, "invalid_size", f"The declared size {size} is not a file size."
            )
        self.check_size(size)
        self.check_type(mime_type)

    def check_count(self, count: int) -> None:
        if count > self.max_per_message:
            raise AttachmentError(
                400,
                "too_many_attachments",
                f"A message may carry {self.max_per_message} attachments, this one has "
                f"{count} (ATTACHMENT_MAX_PER_MESSAGE).",
            )


def clean_name(name: str) -> str:
    """A display name: no directories, no control characters, bounded."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    return base[:MAX_NAME_CHARS] or "file"
