"""An upload's bytes as they arrive: the ``file`` field of a multipart form, or the raw body.

The multipart form is parsed as a stream with python-multipart's parser (the one
Starlette uses), without Starlette's ``request.form()``, which spools every file to a
temporary file before the route sees a byte.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from app.attachments.policy import AttachmentError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# The parser logs a warning for every malformed body before raising; the 400 answer
# says it, and a client sending garbage must not flood the log.
logging.getLogger("python_multipart.multipart").setLevel(logging.ERROR)

FILE_FIELD = b"file"
# A multipart body's bytes besides the file: boundaries, part headers, other fields.
MULTIPART_OVERHEAD = 64 * 1024


def malformed(detail: str) -> AttachmentError:
    return AttachmentError(
        400,
        "malformed_upload",
        f"{detail}. Send the file as the multipart/form-data field 'file', or as the raw body.",
    )


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


async def raw_body(request: Request) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise malformed("The upload was cut off") from None


async def multipart_file(request: Request) -> AsyncGenerator[bytes, None]:
    """The bytes of the form's ``file`` field, as the parser finds them; 400 without one,
    or when the form is cut before the field's closing boundary."""
    _, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if not boundary:
        raise malformed("The multipart body has no boundary")
    state = _FileField()
    try:
        parser = MultipartParser(boundary, state.callbacks())
        async for chunk in raw_body(request):
            parser.write(chunk)
            for piece in state.take():
                yield piece
            if state.ended:
                break  # the rest (other fields, the epilogue) is not read
    except FormParserError:
        raise malformed("The multipart body is malformed") from None
    if not state.found:
        raise malformed("The form has no 'file' field")
    if not state.ended:
        raise malformed("The upload was cut off")


class _FileField:
    """Collects the ``file`` part's data from the parser's callbacks."""

    def __init__(self) -> None:
        self.header_name = b""
        self.header_value = b""
        self.disposition = b""
        self.in_file = False
        self.found = False
        self.ended = False
        self.pending: list[bytes] = []

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def take(self) -> list[bytes]:
        pieces, self.pending = self.pending, []
        return pieces

    def on_part_begin(self) -> None:
        self.disposition = b""
        self.in_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        self.in_file = options.get(b"name") == FILE_FIELD and not self.found
        self.found = self.found or self.in_file

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file and end > start:
            self.pending.append(data[start:end])

    def on_part_end(self) -> None:
        if self.in_file:
            self.ended = True
            self.in_file = False
