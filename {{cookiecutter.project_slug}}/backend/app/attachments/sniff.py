"""What a file is, decided from its first bytes; never from its name or declared type."""

from __future__ import annotations

from typing import Literal

Kind = Literal["image", "pdf", "text"]

# Every type ATTACHMENT_TYPES may name: its kind and the extensions the composer offers.
KNOWN_TYPES: dict[str, tuple[Kind, tuple[str, ...]]] = {
    "image/png": ("image", (".png",)),
    "image/jpeg": ("image", (".jpg", ".jpeg")),
    "image/webp": ("image", (".webp",)),
    "image/gif": ("image", (".gif",)),
    "application/pdf": ("pdf", (".pdf",)),
    "text/plain": ("text", (".txt",)),
    "text/markdown": ("text", (".md", ".markdown")),
    "text/csv": ("text", (".csv",)),
}

# Enough for every signature below and for a fair look at the start of a text file.
SNIFF_BYTES = 4096

TEXT = "text/plain"  # what sniff() answers for any text; the declared text type refines it

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)

# Starts that browsers sniff as HTML or XML (WHATWG MIME sniffing, "text/html" and XML
# rows), plus SVG: a text file starting so is refused, so nothing uploaded ever renders.
_MARKUP_STARTS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
    b"<!--",
    b"<?xml",
    b"<svg",
)
_TAG_ENDS = b" >\t\n\r\x0c/"


def kind_of(mime_type: str) -> Kind | None:
    known = KNOWN_TYPES.get(mime_type)
    return known[0] if known else None


def sniff(head: bytes, complete: bool) -> str | None:
    """The type of a file starting with ``head``; None when it is none we accept.

    ``complete``: ``head`` is the whole file (so a cut multi-byte character at its end
    is an error, not the edge of the sample).
    """
    for signature, mime_type in _SIGNATURES:
        if head.startswith(signature):
            return mime_type
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return TEXT if _is_text(head, complete) else None


def _is_text(head: bytes, complete: bool) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A sample may end inside a character: at most 3 bytes of it, at the very end.
        if complete or error.start < len(head) - 3 or error.reason != "unexpected end of data":
            return False
    return not _is_markup(head)


def _is_markup(head: bytes) -> bool:
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\n\r\x0c").lower()
    for pattern in _MARKUP_STARTS:
        if start.startswith(pattern):
            rest = start[len(pattern) : len(pattern) + 1]
            # "<p" must be a tag ("<p>", "<p class"), not "<price>"; "<!--", "<?xml" always.
            if pattern in (b"<!--", b"<?xml") or not rest or rest in _TAG_ENDS:
                return True
    return False
