"""What the attachment rows (10-13) share: files, the two-phase upload over HTTP, raw
requests for what httpx will not send (lying Content-Length, bodies cut mid-way), and
the attachment's rows in the database.

The HTTP contract (docs of issue #8): `attachments.create` over POST /chatkit answers
the attachment with an `upload_descriptor`; POST or PUT to its URL takes multipart
field `file` or the raw bytes; GET /chatkit/attachments/<id> gives them back, owner only.
"""

from __future__ import annotations

import hashlib
import random
import select
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from reliability.harness import COOKIE, Browser, Database, Reply

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHUNK_BYTES = 256 * 1024  # the stores' chunk size
SEND_PIECE = 64 * 1024


def png(rng: random.Random, size: int) -> bytes:
    """`size` bytes that sniff as PNG: the signature, then noise."""
    return PNG_SIGNATURE + rng.randbytes(max(0, size - len(PNG_SIGNATURE)))


_LETTERS = b"abcdefghijklmnopqrstuvwxyz \n"
_AS_TEXT = bytes.maketrans(
    bytes(range(256)), bytes(_LETTERS[i % len(_LETTERS)] for i in range(256))
)


def text_file(rng: random.Random, size: int) -> bytes:
    """`size` bytes of plain ASCII text (noise made of letters, spaces and newlines)."""
    return rng.randbytes(size).translate(_AS_TEXT)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def create(browser: Browser, name: str, size: int, mime_type: str) -> Reply:
    """`attachments.create` over POST /chatkit."""
    return browser.request("attachments.create", name=name, size=size, mime_type=mime_type)


def upload_path(attachment: dict[str, Any]) -> str:
    """The path of the descriptor's URL (its origin is this backend's)."""
    descriptor = attachment.get("upload_descriptor") or {}
    return urlsplit(str(descriptor.get("url", ""))).path


def content_path(attachment_id: str) -> str:
    return f"/chatkit/attachments/{quote(attachment_id, safe='')}"


def new_attachment(browser: Browser, name: str, data: bytes, mime_type: str) -> dict[str, Any]:
    reply = create(browser, name, len(data), mime_type)
    if reply.status != 200:
        raise AssertionError(f"attachments.create: HTTP {reply.status} {reply.body[:300]!r}")
    return dict(reply.json())


def upload(
    browser: Browser, attachment: dict[str, Any], data: bytes, style: str = "multipart"
) -> httpx.Response:
    """Upload with one of the three styles clients use: multipart POST, raw POST, raw PUT."""
    path = upload_path(attachment) or f"{content_path(attachment['id'])}/upload"
    mime_type = str(attachment.get("mime_type", "application/octet-stream"))
    if style == "multipart":
        response = browser.http.post(
            path, files={"file": (str(attachment.get("name", "f")), data, mime_type)}
        )
    else:
        method = "PUT" if style == "put" else "POST"
        response = browser.http.request(
            method, path, content=data, headers={"content-type": mime_type}
        )
    browser.recorder.record(response.status_code, response.headers, response.content, "upload")
    return response


def download(browser: Browser, attachment_id: str) -> httpx.Response:
    response = browser.http.get(content_path(attachment_id))
    browser.recorder.record(response.status_code, response.headers, response.content, "download")
    return response


def uploaded(browser: Browser, name: str, data: bytes, mime_type: str = "image/png") -> str:
    """A created and uploaded attachment's id (the check fails loudly if it cannot)."""
    attachment = new_attachment(browser, name, data, mime_type)
    response = upload(browser, attachment, data)
    if response.status_code != 200:
        raise AssertionError(f"upload: HTTP {response.status_code} {response.text[:300]}")
    return str(attachment["id"])


def message_with(attachment_ids: list[str], text: str = "what is in this file?") -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": attachment_ids,
        "inference_options": {},
    }


# --- raw HTTP ------------------------------------------------------------------------


@dataclass
class RawReply:
    status: int  # 0: the server closed the connection without answering
    headers: httpx.Headers
    body: bytes


def raw_request(
    method: str,
    path: str,
    *,
    host: str,
    cookie: str,
    headers: list[tuple[str, str]],
    body: bytes,
    content_length: int | None,
) -> bytes:
    """An HTTP/1.1 request with exactly these headers; Content-Length as given (None: none)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    if cookie:
        lines.append(f"Cookie: {COOKIE}={cookie}")
    lines += [f"{name}: {value}" for name, value in headers]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def send_raw(port: int, request: bytes, *, cut: bool, timeout: float = 15.0) -> RawReply:
    """Send `request`; with `cut`, close our side right after (the body ends there).

    Sent in pieces, watching for an early answer: a server that refuses a body part way
    (413) answers and closes while the rest is still coming, and that answer counts.
    Then reads until the server closes; a reset before any answer counts as none.
    """
    data = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            for start in range(0, len(request), SEND_PIECE):
                sock.sendall(request[start : start + SEND_PIECE])
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break  # an answer (or a close) before the end of the body
            if cut:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server closed while we were sending: read what it said
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data.extend(chunk)
    return parse_reply(bytes(data))


def parse_reply(data: bytes) -> RawReply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines or not lines[0].startswith(b"HTTP/"):
        return RawReply(0, httpx.Headers(), b"")
    status = int(lines[0].split()[1])
    headers = httpx.Headers(
        [tuple(part.strip() for part in line.decode("latin-1").split(":", 1)) for line in lines[1:]]
    )
    return RawReply(status, headers, body)


def multipart(
    parts: list[tuple[str, str | None, bytes, str]], boundary: str | None = None
) -> tuple[bytes, str]:
    """A multipart/form-data body from (field, filename, data, content type) parts."""
    boundary = boundary or f"reliability{uuid.uuid4().hex}"
    out = bytearray()
    for field_name, filename, data, content_type in parts:
        disposition = f'form-data; name="{field_name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        out += f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


# --- the database --------------------------------------------------------------------


def upload_columns(database: Database, attachment_id: str) -> tuple[Any, ...] | None:
    """(upload_id, size, content_type, thread_id) of an attachment row, or None."""
    rows = database.query(
        "SELECT upload_id, size, content_type, thread_id FROM chatkit_attachments WHERE id = $1",
        attachment_id,
    )
    return rows[0] if rows else None


def chunk_count(database: Database, attachment_id: str) -> int:
    rows = database.query(
        "SELECT COUNT(*) FROM chatkit_attachment_chunks WHERE attachment_id = $1", attachment_id
    )
    return int(rows[0][0])


def attachment_rows(database: Database, user_id: str) -> list[tuple[str, ...]]:
    """A user's attachment rows with their upload columns and chunk digests, as text."""
    rows = database.query(
        "SELECT id, data, upload_id, size, content_type, thread_id FROM chatkit_attachments "
        "WHERE user_id = $1 ORDER BY id",
        user_id,
    )
    found: list[tuple[str, ...]] = [tuple(str(value) for value in row) for row in rows]
    for row in rows:
        chunks = database.query(
            "SELECT upload_id, seq, data FROM chatkit_attachment_chunks "
            "WHERE attachment_id = $1 ORDER BY upload_id, seq",
            row[0],
        )
        found += [(str(c[0]), str(c[1]), digest(bytes(c[2]))) for c in chunks]
    return found
